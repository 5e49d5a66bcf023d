"""Preprocessing before and after: the same shifted pictures through today's
`digitlab.inference.preprocess` and through the one of an earlier commit, scored by the
serving model and the `plain` baseline, in one run.

    python bench/preprocessing.py --before 96daf39     # the commit before robust preprocessing
    python bench/preprocessing.py --before 96daf39 --count 300

The earlier module is read with `git show REV:src/digitlab/inference/preprocess.py` and
loaded beside today's; the pictures are those of bench/robustness.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

from digitlab.config import get_settings
from digitlab.data import load_split
from digitlab.evaluation.shifts import SHIFTS, png
from digitlab.inference import preprocess
from digitlab.inference.runtime import OnnxClassifier
from digitlab.registry import versions as registry
from robustness import baseline_version, machine  # bench/ is on sys.path

MODULE = "src/digitlab/inference/preprocess.py"


def earlier(rev: str, work: Path) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{rev}:{MODULE}"], capture_output=True, text=True, check=True
    ).stdout
    path = work / "preprocess_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("preprocess_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the commit whose preprocessing to compare")
    parser.add_argument("--baseline", help="a registry version (default: train `plain`)")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    settings = get_settings()
    work = Path(tempfile.mkdtemp(prefix="digitlab-preprocessing-"))
    old = earlier(args.before, work)
    name = registry.current_version(settings.model_dir)
    if name is None:
        sys.exit("error: no serving model; train one first (digitlab train)")
    served = registry.load_version(settings.model_dir, name)
    base = baseline_version(args, settings, work)
    models = {"serving": OnnxClassifier(served), "plain": OnnxClassifier(base)}
    steps: dict[str, Callable[[bytes], np.ndarray]] = {
        "before": old.image_to_digit,
        "after": preprocess.image_to_digit,
    }
    test = load_split("mnist", "test", settings)
    rng = np.random.default_rng(args.seed)
    picked = np.sort(rng.choice(len(test.labels), size=args.count, replace=False))
    digits, labels = test.images[picked], test.labels[picked]

    print(f"\n{machine()}; `python bench/preprocessing.py {' '.join(sys.argv[1:])}`")
    print(f"serving: {served.version}; plain: {base.version}; {len(labels)} test digits a set\n")
    print("| shift | strength | serving, before | serving, after | plain, before | plain, after |")
    print("|---|---:|---:|---:|---:|---:|")
    for shift in SHIFTS.values():
        for strength in shift.strengths:
            files = [png(p) for p in shift.make(digits, strength, np.random.default_rng(args.seed))]
            cells = []
            for model in models.values():
                for step in steps.values():
                    seen = np.stack([step(f) for f in files])
                    acc = float((model.probabilities(seen).argmax(1) == labels).mean())
                    cells.append(f"{100 * acc:.1f}%")
            print(f"| {shift.name} | {strength:g} {shift.unit} | {' | '.join(cells)} |")
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
