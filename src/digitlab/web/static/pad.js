// A drawing pad on a canvas, shared by the Recognise page's digit pad (recognise.js) and
// its number pad (numbers.js): strokes from mouse, touch or pen, kept as lists of [x, y]
// in canvas pixels and painted black on white with a round pen of the given width.
"use strict";

class DrawingPad {
  // `underlay(ctx)` paints what lies under the strokes (an uploaded picture); `onStart`
  // runs when a new stroke begins.
  constructor(canvas, stroke, { underlay = () => {}, onStart = () => {} } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.stroke = stroke;
    this.underlay = underlay;
    this.strokes = [];
    let current = null;
    canvas.addEventListener("pointerdown", (event) => {
      canvas.setPointerCapture(event.pointerId);
      onStart();
      current = [this.point(event)];
      this.strokes.push(current);
      this.paint();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!current) return;
      current.push(this.point(event));
      this.paint();
    });
    for (const type of ["pointerup", "pointercancel"]) {
      canvas.addEventListener(type, () => { current = null; });
    }
  }

  point(event) {
    const box = this.canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * this.canvas.width / box.width,
            (event.clientY - box.top) * this.canvas.height / box.height];
  }

  paint() {
    const ctx = this.ctx;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.underlay(ctx);
    ctx.strokeStyle = "#000";
    ctx.fillStyle = "#000";
    ctx.lineWidth = this.stroke;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    for (const s of this.strokes) {
      if (s.length === 1) {  // a tap: a dot as wide as the pen
        ctx.beginPath();
        ctx.arc(s[0][0], s[0][1], this.stroke / 2, 0, 2 * Math.PI);
        ctx.fill();
        continue;
      }
      ctx.beginPath();
      ctx.moveTo(s[0][0], s[0][1]);
      for (const [x, y] of s.slice(1)) ctx.lineTo(x, y);
      ctx.stroke();
    }
  }

  clear() { this.strokes = []; this.paint(); }
  undo() { this.strokes.pop(); this.paint(); }
  get empty() { return this.strokes.length === 0; }
}
