"""Robustness benchmark: the serving model beside the previous default on digits unlike
MNIST's, all made from the MNIST *test* set, in one run.

    python bench/robustness.py                      # serving version vs the `plain` recipe
    python bench/robustness.py --baseline VERSION   # ... vs a version in the registry
    python bench/robustness.py --count 300 --canvas 0   # quicker, no browser

Each shift of `digitlab.evaluation.shifts` (rotation, pen thickness, low resolution,
tiny pictures, elastic, noise, inversion, off-centre) at each of its strengths goes
through the service's preprocessing as an uploaded PNG would. With `--canvas N`, N digits
are also drawn with the mouse on the Recognise page's canvas in Chromium (Playwright,
Debian's /usr/bin/chromium) from pen strokes (`digitlab.evaluation.penpaths`), and the
PNG the page would send is scored by both models. Prints a Markdown table (accuracy per
shift and strength, the difference) and writes a plot: accuracy against strength, one
line per model, a panel per shift.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from digitlab.config import Settings, get_settings
from digitlab.data import load_split
from digitlab.evaluation import penpaths
from digitlab.evaluation.shifts import SHIFTS, as_model_input
from digitlab.inference.preprocess import image_to_digit
from digitlab.inference.runtime import OnnxClassifier
from digitlab.registry import versions as registry
from train import machine  # bench/train.py's: the CPU and torch's threads


def baseline_version(
    args: argparse.Namespace, settings: Settings, work: Path
) -> registry.ModelVersion:
    """The version to compare against: named, or trained now with the `plain` recipe
    (the default until 2026-12) into a scratch folder, exported like any other."""
    if args.baseline:
        return registry.load_version(settings.model_dir, args.baseline)
    from digitlab.ml.pipeline import train_and_register  # torch only when training
    from digitlab.ml.recipes import get_recipe

    t0 = time.perf_counter()
    scratch = settings.model_copy(update={"model_dir": work / "baseline"})
    version = train_and_register(get_recipe("plain").replace(seed=args.seed), scratch)
    print(f"trained the baseline ({version.version}) in {time.perf_counter() - t0:.0f} s")
    return version


def canvas_pictures(count: int, model_dir: Path, seed: int) -> tuple[list[bytes], list[int]]:
    """`count` digits drawn with the mouse on the real Recognise page, as the PNG bytes
    its script sends (`pad.toDataURL`)."""
    from canvas_draw import recognise_page

    pictures, labels = [], []
    with recognise_page(model_dir) as page:
        for label, strokes in penpaths.sample(count, seed=seed):
            page.locator("#clear").click()
            penpaths.draw(page, strokes)
            url = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
            pictures.append(base64.b64decode(url.split(",", 1)[1]))
            labels.append(label)
    return pictures, labels


class ShiftAveraged:
    """Test-time augmentation: the mean of a model's digit probabilities over the picture
    and its four one-pixel shifts, so five times the model's work per answer."""

    SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))

    def __init__(self, model: OnnxClassifier) -> None:
        self.model = model

    def probabilities(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        moved = [np.roll(images, s, axis=(1, 2)) for s in self.SHIFTS]
        probs = self.model.probabilities(np.concatenate(moved))
        mean: npt.NDArray[np.float32] = probs.reshape(len(self.SHIFTS), len(images), -1).mean(0)
        return mean


Model = OnnxClassifier | ShiftAveraged


def accuracy(model: Model, digits: npt.NDArray[np.uint8], labels: npt.NDArray[np.uint8]) -> float:
    return float((model.probabilities(digits).argmax(1) == labels).mean())


def answer_ms(model: Model, digit: npt.NDArray[np.uint8], reps: int = 200) -> float:
    """The model's time for one picture (as one request asks), median of `reps`."""
    model.probabilities(digit[None])
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        model.probabilities(digit[None])
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def plot(
    results: dict[str, dict[str, list[float]]],
    names: list[str],
    path: Path,
    overall: dict[str, dict[str, float]],
) -> None:
    """A panel per shift (accuracy against strength, a line per model, one scale for
    all), and a last panel of bars: MNIST test, canvas, mean over the shifted sets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shifts = list(SHIFTS.values())
    fig, axes = plt.subplots(2, (len(shifts) + 2) // 2, figsize=(16, 7), squeeze=False)
    for ax, shift in zip(axes.flat, shifts, strict=False):
        # Sizes ("cells a side") run from plain to coarsest as listed; the rest by value.
        listed = "a side" in shift.unit
        xs = list(shift.strengths) if listed else sorted(shift.strengths)
        at = [shift.strengths.index(x) for x in xs]
        for name in names:
            ys = [100 * results[name][shift.name][i] for i in at]
            ax.plot(range(len(xs)) if listed else xs, ys, marker="o", label=name)
        if listed:
            ax.set_xticks(range(len(xs)), ["plain" if x == 0 else f"{x:g}" for x in xs])
        ax.set_title(shift.name)
        ax.set_xlabel(shift.unit)
        ax.set_ylabel("accuracy %")
        ax.set_ylim(50, 100.5)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(loc="lower left")
    bars = axes.flat[len(shifts)]
    labels = list(next(iter(overall.values())))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        xs = [i + k * width for i in range(len(labels))]
        bars.bar(xs, [100 * overall[name][label] for label in labels], width, label=name)
    bars.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(labels))], labels)
    bars.set_ylim(50, 100.5)
    bars.set_title("overall")
    for ax in list(axes.flat)[len(shifts) + 1 :]:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="the version to measure (default: the serving one)")
    parser.add_argument("--baseline", help="a registry version to compare with (default: "
                        "train the previous default recipe, `plain`)")  # fmt: skip
    parser.add_argument("--versions", default="", help="comma-separated registry versions "
                        "to measure beside the serving one (e.g. a `best` model)")  # fmt: skip
    parser.add_argument("--tta", action="store_true", help="also each model with test-time "
                        "augmentation (mean over the picture and its 1-pixel shifts)")  # fmt: skip
    parser.add_argument("--count", type=int, default=1000, help="test digits per shift")
    parser.add_argument("--canvas", type=int, default=100, help="digits drawn in Chromium")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=Path("var/reports/robustness.png"))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    started = time.perf_counter()
    settings = get_settings()
    work = Path(tempfile.mkdtemp(prefix="digitlab-robustness-"))
    name = args.model or registry.current_version(settings.model_dir)
    if name is None:
        sys.exit("error: no serving model; train one first (digitlab train)")
    served = registry.load_version(settings.model_dir, name)
    base = baseline_version(args, settings, work)
    models: dict[str, Model] = {f"serving ({served.card.get('recipe')})": OnnxClassifier(served)}
    for other in filter(None, args.versions.split(",")):
        version = registry.load_version(settings.model_dir, other)
        models[f"{version.card.get('recipe')} ({other})"] = OnnxClassifier(version)
    if args.tta:
        for n, m in list(models.items()):
            assert isinstance(m, OnnxClassifier)
            models[f"{n} + TTA"] = ShiftAveraged(m)
    # The baseline last: the difference column is the first model's lead over it.
    models[f"baseline ({base.card.get('recipe')})"] = OnnxClassifier(base)
    names = list(models)

    test = load_split("mnist", "test", settings)
    rng = np.random.default_rng(args.seed)
    picked = np.sort(
        rng.choice(len(test.labels), size=min(args.count, len(test.labels)), replace=False)
    )
    digits, labels = test.images[picked], test.labels[picked]
    results: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    for shift in SHIFTS.values():
        for strength in shift.strengths:
            seen = as_model_input(shift.make(digits, strength, np.random.default_rng(args.seed)))
            for n, model in models.items():
                results[n].setdefault(shift.name, []).append(accuracy(model, seen, labels))
    mnist = {n: accuracy(m, test.images, test.labels) for n, m in models.items()}
    canvas: dict[str, float] = {}
    if args.canvas:
        pictures, drawn = canvas_pictures(args.canvas, served.path.parent, args.seed)
        seen = np.stack([image_to_digit(p) for p in pictures])
        canvas = {n: accuracy(m, seen, np.array(drawn, np.uint8)) for n, m in models.items()}

    when = datetime.now(UTC).strftime("%Y-%m-%d")
    print(f"\n{when}; {machine()}; `python bench/robustness.py {' '.join(sys.argv[1:])}`")
    print(f"serving: {served.version}; baseline: {base.version}; {len(labels)} test digits a set\n")
    print(f"| shift | strength | {' | '.join(names)} | difference |")
    print("|---|---:|" + "---:|" * (len(names) + 1))

    def row(label: str, strength: str, values: list[float]) -> None:
        cells = " | ".join(f"{100 * v:.1f}%" for v in values)
        print(f"| {label} | {strength} | {cells} | {100 * (values[0] - values[-1]):+.1f} |")

    row("MNIST test (all 10,000)", "", [mnist[n] for n in names])
    for shift in SHIFTS.values():
        for i, strength in enumerate(shift.strengths):
            row(
                shift.name, f"{strength:g} {shift.unit}", [results[n][shift.name][i] for n in names]
            )
    if canvas:
        row(f"canvas, drawn in Chromium ({args.canvas})", "", [canvas[n] for n in names])
    shifted = {n: statistics.mean(a for accs in results[n].values() for a in accs) for n in names}
    row("mean over all shifted sets", "", [shifted[n] for n in names])
    print("\n| model | ms per answer (model only, one picture, median of 200) |\n|---|---:|")
    for n, m in models.items():
        print(f"| {n} | {answer_ms(m, test.images[0]):.3f} |")
    overall = {n: {"MNIST": mnist[n], "shifted": shifted[n]} for n in names}
    if canvas:
        for n in names:
            overall[n]["canvas"] = canvas[n]
    plot(results, names, args.plot, overall)
    print(f"\nplot: {args.plot}; {time.perf_counter() - started:.0f} s in all")
    if args.json:
        figures = {"date": when, "machine": machine(), "mnist": mnist, "canvas": canvas}
        args.json.write_text(json.dumps(figures | {"shifts": results}, indent=2))


if __name__ == "__main__":
    main()
