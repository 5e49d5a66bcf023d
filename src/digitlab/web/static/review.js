// The Review page: label the queue's inputs one at a time with the keyboard.
// Every action runs after the one before has been answered, so fast typing neither
// drops keys nor labels the wrong image.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  let items = [];          // the queue as fetched, minus what was labelled or skipped
  let remaining = 0;       // the server's count of inputs waiting
  const skipped = new Set();  // input ids skipped on this visit
  const done = [];         // {item, feedback} stack for undo
  let chain = Promise.resolve();

  const run = (action) => { chain = chain.then(action).catch((e) => say(String(e))); };
  const say = (text) => { $("status").textContent = text; };

  async function call(method, url, body) {
    const r = await fetch(url, {
      method, credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    if (r.status === 401) { location.href = "/login?next=/review"; throw new Error("sign in"); }
    const data = await r.json().catch(() => ({}));
    return { ok: r.ok, status: r.status, data };
  }

  async function load() {
    const r = await call("GET", "/api/v1/review?limit=50");
    if (!r.ok) { say(r.data.detail || "the queue could not be read"); return; }
    remaining = r.data.remaining;
    items = r.data.items.filter((i) => !skipped.has(i.input_id));
    show();
  }

  function show() {
    $("left").textContent = `${remaining} left`;
    $("undo").disabled = done.length === 0;
    const item = items[0];
    $("card").hidden = !item;
    $("done").hidden = Boolean(item);
    if (!item) {
      if (skipped.size) $("done").textContent = `Only skipped inputs are left (${skipped.size}); reload to see them again.`;
      return;
    }
    $("digit").src = item.image_url;
    $("version").textContent = item.model_version;
    const top = $("top3");
    top.replaceChildren(...item.top3.map((g) => {
      const li = document.createElement("li");
      li.innerHTML = `<b>${g.label}</b> ${(100 * g.probability).toFixed(1)}%`;
      return li;
    }));
    const anon = $("anonymous");
    anon.hidden = item.anonymous_label === null;
    anon.textContent = `Someone (anonymous) said ${item.anonymous_label}.`;
  }

  async function next() {
    items.shift();
    if (items.length === 0) await load(); else show();
  }

  async function label(digit) {
    const item = items[0];
    if (!item) return;
    const r = await call("POST", `/api/v1/predictions/${item.prediction_id}/feedback`, { label: digit });
    if (r.ok) {
      done.push({ item, feedback: r.data.id });
      remaining -= 1;
      say(`Labelled input ${item.input_id} as ${digit}.`);
    } else {
      say(r.data.detail || `not stored (${r.status})`);
      if (r.status !== 409) return;  // 409: a labeller has labelled it meanwhile: move on
    }
    await next();
  }

  async function skip() {
    const item = items[0];
    if (!item) return;
    skipped.add(item.input_id);
    say(`Skipped input ${item.input_id}.`);
    await next();
  }

  async function undo() {
    const last = done.pop();
    if (!last) return;
    const r = await call("DELETE", `/api/v1/feedback/${last.feedback}`);
    if (!r.ok) { say(r.data.detail || "could not undo"); show(); return; }
    items.unshift(last.item);
    remaining += 1;
    say(`Undone: input ${last.item.input_id} is back.`);
    show();
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key >= "0" && e.key <= "9" && e.key.length === 1) { e.preventDefault(); run(() => label(Number(e.key))); }
    else if (e.key === " ") { e.preventDefault(); run(skip); }
    else if (e.key === "Backspace") { e.preventDefault(); run(undo); }
  });
  document.querySelectorAll("[data-label]").forEach((b) =>
    b.addEventListener("click", () => run(() => label(Number(b.dataset.label)))));
  $("skip").addEventListener("click", () => run(skip));
  $("undo").addEventListener("click", () => run(undo));
  run(load);
})();
