"""Draw each preprocessing step for one digit into docs/preprocess.png (for the README).

    python docs/make_preprocess_figure.py   # needs the MNIST files (DIGITLAB_DATA_DIR)

A test digit is drawn as a person would send it (dark ink on a light, uneven canvas,
scaled up and off-centre, saved as JPEG) and taken through `digitlab.inference.preprocess`.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from digitlab.config import get_settings
from digitlab.data import load_split
from digitlab.inference import preprocess as pp

OUT = Path(__file__).resolve().parent / "preprocess.png"


def canvas(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    big = np.asarray(Image.fromarray(digit).resize((150, 150), Image.Resampling.BICUBIC), float)
    paper = 235 + rng.normal(0, 4, (260, 360))
    paper[40:190, 170:320] *= 1 - big / 255
    out = io.BytesIO()
    Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=85)
    return out.getvalue()


def main() -> None:
    digit = load_split("mnist", "test", get_settings(), download=False).images[0]
    data = canvas(digit, np.random.default_rng(0))
    gray = pp.grayscale(pp.decode(data))
    ink = pp.light_ink(gray)
    border = np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])
    background = float(np.median(border))
    stretched = np.clip((ink - background) * 255 / (ink.max() - background), 0, 255)
    rows, cols = np.nonzero(stretched >= pp.INK_THRESHOLD * 255)
    crop = stretched[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    boxed = pp.fit_box(crop.astype(np.float32))
    final = pp.image_to_digit(data)
    steps = [
        ("1-2. decoded, grayscale", gray, "gray"),
        ("3. inverted (light background)", ink, "gray"),
        ("4. background removed, stretched", stretched, "gray"),
        ("5. cropped to the ink", crop, "gray"),
        (f"6. fit to {pp.BOX}x{pp.BOX}", boxed, "gray"),
        ("7. centre of mass at the centre", final, "gray"),
    ]
    fig, axes = plt.subplots(1, len(steps), figsize=(2.3 * len(steps), 2.6))
    for ax, (title, pixels, cmap) in zip(axes, steps, strict=True):
        ax.imshow(pixels, cmap=cmap, vmin=0, vmax=255)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel(f"{pixels.shape[1]}x{pixels.shape[0]}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(OUT, dpi=80)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
