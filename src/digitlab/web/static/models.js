// The Models page: follows the background upgrade (GET /api/v1/upgrade) while it works,
// and reloads the page once it ends, so that the "serving" tag moves with the switch.
"use strict";
(() => {
  const panel = document.getElementById("upgrade");
  if (!panel) return;
  const $ = (id) => document.getElementById(id);
  const working = (state) => ["starting", "training", "evaluating"].includes(state);
  if (!working(panel.dataset.state)) return;

  async function poll() {
    let data;
    try {
      const r = await fetch("/api/v1/upgrade", { credentials: "same-origin" });
      if (!r.ok) throw new Error(String(r.status));
      data = await r.json();
    } catch (e) {
      setTimeout(poll, 10000); // the service is restarting or busy: try again later
      return;
    }
    if (!working(data.state)) { location.reload(); return; }
    panel.dataset.state = data.state;
    $("upgrade-message").textContent = data.message;
    $("upgrade-epoch").textContent = `${data.epoch}/${data.epochs}`;
    $("upgrade-progress").value = data.fraction;
    $("upgrade-progress").textContent = `${Math.round(100 * data.fraction)}%`;
    setTimeout(poll, 3000);
  }
  setTimeout(poll, 3000);
})();
