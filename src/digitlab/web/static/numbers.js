// The Recognise page's number mode: a wide pad (or an uploaded picture of a number) sent to
// POST /api/v1/read; each digit's box is drawn over the picture with its digit and
// confidence, and the whole number can be corrected (POST /api/v1/readings/{id}/correct).
"use strict";

(() => {
  const pad = document.getElementById("number-pad");
  if (!pad) return;
  let picture = null;  // an uploaded image shown in place of the strokes
  let readingId = null;
  const drawing = new DrawingPad(pad, 18, {
    underlay: (ctx) => {
      if (!picture) return;
      const at = placement();
      ctx.drawImage(picture, at.x, at.y, picture.width * at.scale, picture.height * at.scale);
    },
    onStart: () => { picture = null; },
  });
  const ctx = drawing.ctx;

  function say(text) { document.getElementById("number-status").textContent = text; }

  // Where the picture lies on the pad: the whole pad for a drawing, fitted for an upload.
  function placement() {
    if (!picture) return { x: 0, y: 0, scale: 1 };
    const scale = Math.min(pad.width / picture.width, pad.height / picture.height);
    return { x: (pad.width - picture.width * scale) / 2,
             y: (pad.height - picture.height * scale) / 2, scale };
  }

  function redraw(digits) {
    drawing.paint();
    if (digits) drawBoxes(digits);
  }

  function drawBoxes(digits) {
    const at = placement();
    ctx.lineWidth = 2;
    ctx.font = "16px sans-serif";
    for (const d of digits) {
      const [x, y, w, h] = d.box.map((v) => v * at.scale);
      ctx.strokeStyle = "#d33";
      ctx.strokeRect(at.x + x, at.y + y, w, h);
      ctx.fillStyle = "#d33";
      ctx.fillText(`${d.prediction} ${(d.confidence * 100).toFixed(0)}%`, at.x + x, at.y + y - 4);
    }
  }

  function clear() {
    picture = null;
    drawing.clear();
    document.getElementById("number-result").hidden = true;
  }
  document.getElementById("number-clear").addEventListener("click", clear);

  async function send(request) {
    say("Reading…");
    let response;
    try {
      response = await fetch("/api/v1/read", request);
    } catch (err) {
      say("The service cannot be reached. Is it running?");
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      say(`Not read: ${body.detail || response.statusText}`);
      return;
    }
    readingId = body.reading_id;
    redraw(body.digits);
    document.getElementById("number-result").hidden = false;
    document.getElementById("number-text").textContent = body.text;
    document.getElementById("number-confidence").textContent =
      `${(body.confidence * 100).toFixed(1)}%`;
    document.getElementById("number-correct").value = body.text;
    say(body.digits.length ? `It reads ${body.text} (${body.digits.length} digits).`
                           : "No number found in this picture.");
  }

  document.getElementById("read-number").addEventListener("click", () => {
    if (drawing.empty && !picture) { say("Draw or upload a number first."); return; }
    send({ method: "POST", headers: { "Content-Type": "application/json" },
           body: JSON.stringify({ image: pad.toDataURL("image/png") }) });
  });

  const fileInput = document.getElementById("number-file");
  fileInput.addEventListener("change", () => {
    const file = fileInput.files[0];
    if (!file) return;
    const image = new Image();
    image.onload = () => {
      picture = image;
      drawing.clear();
      const form = new FormData();
      form.append("file", file);
      send({ method: "POST", body: form });
    };
    image.onerror = () => say("That file cannot be shown as an image.");
    image.src = URL.createObjectURL(file);
  });

  document.getElementById("number-send").addEventListener("click", async () => {
    const text = document.getElementById("number-correct").value.trim();
    if (readingId === null) return;
    if (!/^[0-9]{1,12}$/.test(text)) { say("A correction is 1 to 12 digits, e.g. 2026."); return; }
    const response = await fetch(`/api/v1/readings/${readingId}/correct`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text }),
    });
    const body = await response.json().catch(() => ({}));
    say(response.ok ? `Thanks: recorded that it was ${text}.`
                    : `Correction not recorded: ${body.detail || response.statusText}`);
  });

  redraw();
})();
