// The Recognise page: a drawing pad (mouse, touch, pen), an upload control, and the result.
// Sends the image to POST /api/v1/predict and records feedback for the prediction shown.
"use strict";

const pad = document.getElementById("pad");
// Thick enough to survive the reduction to a 20x20 box (MNIST strokes are ~2-3 px there).
const drawing = new DrawingPad(pad, 22);
let predictionId = null;

document.getElementById("clear").addEventListener("click", () => drawing.clear());
document.getElementById("undo").addEventListener("click", () => drawing.undo());
pad.addEventListener("keydown", (event) => {  // keyboard users: Enter recognises, Escape clears
  if (event.key === "Enter") recogniseDrawing();
  if (event.key === "Escape") drawing.clear();
});

function say(text) { document.getElementById("status").textContent = text; }

async function send(request) {
  say("Recognising…");
  let response;
  try {
    response = await fetch("/api/v1/predict", request);
  } catch (err) {
    say("The service cannot be reached. Is it running?");
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    say(`Not recognised: ${body.detail || response.statusText}`);
    return;
  }
  show(body);
}

function recogniseDrawing() {
  if (drawing.empty) { say("Draw a digit first."); return; }
  send({ method: "POST", headers: { "Content-Type": "application/json" },
         body: JSON.stringify({ image: pad.toDataURL("image/png") }) });
}
document.getElementById("recognise").addEventListener("click", recogniseDrawing);

function upload(file) {
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  send({ method: "POST", body: form });
}
const drop = document.getElementById("drop");
const fileInput = document.getElementById("file");
fileInput.addEventListener("change", () => upload(fileInput.files[0]));
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  upload(event.dataTransfer.files[0]);
});

function show(result) {
  predictionId = result.prediction_id;
  // is_digit false: the model judged the picture not to be a digit. No number is claimed
  // then (the bars still show the nearest), and the person may say which digit it was.
  const refused = result.is_digit === false;
  document.getElementById("result").hidden = false;
  document.getElementById("answer").classList.toggle("refused", refused);
  const digit = document.getElementById("digit");
  digit.textContent = refused ? "?" : result.prediction;
  digit.setAttribute("aria-label", refused ? "not a digit" : "predicted digit");
  document.getElementById("confidence-name").textContent = refused ? "answer" : "confidence";
  document.getElementById("confidence").textContent =
    refused ? "not a digit" : `${(result.confidence * 100).toFixed(1)}%`;
  document.getElementById("feedback-legend").textContent =
    refused ? "Was it a digit? It was…" : "Wrong? It was…";
  document.getElementById("model-version").textContent = result.model_version;
  // image_url carries a key for this one image when the service guards stored data.
  document.getElementById("saw").src = result.image_url;
  const rows = result.probabilities.map((p, d) => {
    const pct = (p * 100).toFixed(1);
    const best = d === result.prediction && !refused ? ' class="best"' : "";
    return `<tr${best}><th scope="row">${d}</th><td class="bar">` +
           `<div class="fill" data-width="${Math.max(p * 100, 0.3)}"></div></td>` +
           `<td class="pct">${pct}%</td></tr>`;
  });
  document.getElementById("bars").innerHTML = rows.join("");
  // The Content-Security-Policy refuses style="..." in markup; .style is allowed.
  for (const fill of document.querySelectorAll("#bars .fill")) {
    fill.style.width = `${fill.dataset.width}%`;
  }
  say(refused ? "This does not look like a digit. If it is one, say which below."
              : `It looks like a ${result.prediction}.`);
}

document.getElementById("feedback-buttons").addEventListener("click", async (event) => {
  const label = event.target.dataset && event.target.dataset.label;
  if (label === undefined || predictionId === null) return;
  const response = await fetch(`/api/v1/predictions/${predictionId}/feedback`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ label: Number(label) }),
  });
  const body = await response.json().catch(() => ({}));
  say(response.ok ? `Thanks: recorded that it was a ${label}.`
                  : `Feedback not recorded: ${body.detail || response.statusText}`);
});

drawing.paint();
