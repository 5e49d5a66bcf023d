"""Fit the number reader's piece weights (`digitlab.inference.numbers.WEIGHTS`) and show
what they change, with the weights in the code as the baseline, in one run.

    python bench/fit_reader.py --versions FAST_VERSION,BEST_VERSION
    python bench/fit_reader.py --count 100 --test-count 50      # quicker

Numbers of 2 to 6 digits are composed from MNIST *training* digits in every layout of
`digitlab.evaluation.numberpics` and every given model reads them, so the weights suit
each model the service may serve; the fit is `digitlab.evaluation.readerfit`'s averaged
structured perceptron. Then numbers composed from MNIST *test* digits are read with the
code's weights and the fitted ones: a Markdown table per model, and the line to paste.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

import numpy as np

from digitlab.config import get_settings
from digitlab.data import load_split
from digitlab.evaluation import readerfit
from digitlab.inference import numbers
from digitlab.inference.predictor import Predictor
from digitlab.inference.runtime import OnnxClassifier
from digitlab.registry import versions as registry
from train import machine  # bench/train.py's: the CPU and torch's threads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", default="", help="comma-separated registry versions "
                        "(default: the serving one)")  # fmt: skip
    parser.add_argument("--count", type=int, default=300, help="training numbers a layout")
    parser.add_argument("--test-count", type=int, default=100, help="test numbers a layout")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    settings = get_settings()
    predictor = Predictor(settings.model_dir)
    names = [v for v in args.versions.split(",") if v] or [predictor.classifier().model.version]
    train, test = load_split("mnist", "train", settings), load_split("mnist", "test", settings)
    data, tests = [], {}
    for name in names:
        model = OnnxClassifier(registry.load_version(settings.model_dir, name))
        rng = np.random.default_rng(args.seed)
        data += readerfit.examples(readerfit.make_numbers(train, args.count, rng, predictor, model))
        rng = np.random.default_rng(args.seed + 1)
        tests[name] = readerfit.make_numbers(test, args.test_count, rng, predictor, model)
    weights = readerfit.fit(data, args.epochs, args.seed)
    before, after = readerfit.cut_wrong(data, readerfit.start()), readerfit.cut_wrong(data, weights)
    command = f"--versions {','.join(names)} --count {args.count} --test-count {args.test_count}"
    print(f"# Number reader's weights, {datetime.now(UTC):%Y-%m-%d} on {machine()}\n")
    print(f"`python bench/fit_reader.py {command}`: {len(data)} groups of strokes with a "
          f"choice; cut wrong with the starting weights {before}, fitted {after}")  # fmt: skip
    for name in names:
        code, fitted = (
            readerfit.exact(tests[name], numbers.WEIGHTS),
            readerfit.exact(tests[name], weights),
        )
        print(f"\n{name}: numbers of MNIST test digits read exactly, {args.test_count} a layout\n")
        print("| layout | the code's weights | fitted |\n|---|---:|---:|")
        for layout in code:
            print(f"| {layout} | {100 * code[layout]:.1f}% | {100 * fitted[layout]:.1f}% |")
        means = 100 * np.mean(list(code.values())), 100 * np.mean(list(fitted.values()))
        print(f"| mean | {means[0]:.1f}% | {means[1]:.1f}% |")
    print("\nWEIGHTS = np.array([" + ", ".join(f"{w:.3f}" for w in weights) + "])")
    return 0


if __name__ == "__main__":
    sys.exit(main())
