"""Training benchmark: each recipe against the reference project's recipe, in one run.

    python bench/train.py                        # reference, fast and best; seeds 0 1 2
    python bench/train.py --recipes fast --seeds 0

Prints, per recipe: training wall time (median over seeds), test accuracy (mean and
min over seeds) and the speed-up over the reference recipe measured in the same run.
Picks CUDA by itself when a GPU is present.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from digitlab.config import get_settings
from digitlab.data import load_split
from digitlab.ml.recipes import get_recipe
from digitlab.ml.train import fit, pick_device, predict_logits, to_tensors


def machine() -> str:
    device = pick_device()
    if device.type == "cuda":
        return f"CUDA {torch.cuda.get_device_name()}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}, {torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="reference,fast,best")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    recipes = args.recipes.split(",")
    if "reference" not in recipes:
        recipes.insert(0, "reference")  # the baseline is always measured in the same run
    seeds = [int(s) for s in args.seeds.split(",")]

    settings = get_settings()
    train = load_split(args.dataset, "train", settings)
    test = load_split(args.dataset, "test", settings)
    x_test, y_test = to_tensors(test.images, test.labels, torch.device("cpu"))
    print(f"machine: {machine()}; torch {torch.__version__}; dataset {args.dataset}")

    runs: dict[str, list[dict[str, float]]] = {}
    for name in recipes:
        for seed in seeds:
            cfg = get_recipe(name).replace(dataset=args.dataset, seed=seed)
            t0 = time.perf_counter()
            result = fit(cfg, train.images, train.labels)
            seconds = time.perf_counter() - t0
            logits = predict_logits(result.model.cpu().float(), x_test)
            acc = int((logits.argmax(1) == y_test).sum()) / len(y_test)
            runs.setdefault(name, []).append({"seed": seed, "seconds": seconds, "accuracy": acc})
            print(
                f"  {name:10s} seed {seed}: {seconds:7.1f} s  test accuracy {acc:.2%}", flush=True
            )

    base = statistics.median(r["seconds"] for r in runs["reference"])
    print()
    print(
        f"| recipe | training s (median of {len(seeds)}) | test acc mean | test acc min "
        "| speed-up vs reference |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, rs in runs.items():
        med = statistics.median(r["seconds"] for r in rs)
        accs = [r["accuracy"] for r in rs]
        print(
            f"| {name} | {med:.1f} | {statistics.mean(accs):.2%} | {min(accs):.2%} "
            f"| {base / med:.1f}x |"
        )
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
