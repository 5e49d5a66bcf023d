"""Training benchmark: each recipe against the reference project's recipe, in one run.

    python bench/train.py                        # reference, fast and best; seeds 0 1 2
    python bench/train.py --recipes fast --seeds 0
    python bench/train.py --recipes fast,fast+compile=default --busy --syncs   # on a GPU

Prints, per recipe: training wall time (median over seeds), training images/s, test
accuracy (mean and min over seeds) and the speed-up over the reference recipe measured in
the same run. A recipe may carry overrides, `fast+compile=default+batch_size=1024`, and
`--set` applies some to every recipe but the reference.

Picks CUDA by itself when a GPU is present; there each recipe trains with its CUDA batch
(`TrainConfig.for_device`), `--busy` adds the share of the fit during which the GPU was
busy: the union of its kernels' and copies' intervals (CUPTI, through torch.profiler, CUDA
activity only) over the wall time of a repeat of the first seed's fit, and `--syncs`
counts the host syncs of another repeat (torch.cuda.set_sync_debug_mode), to show that
none happens per step. On a CPU the busy column is n/a. Every recipe first runs one batch
untimed, so that no timed fit pays for one-off start-up (CUDA context, cuDNN, lazy
imports). `--json` is rewritten after every fit: a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time
import typing
import warnings
from pathlib import Path
from typing import Any

import torch

from digitlab.config import get_settings
from digitlab.data import Split, load_split
from digitlab.ml.recipes import TrainConfig, get_recipe
from digitlab.ml.train import fit, pick_device, predict_logits, to_tensors
from digitlab.ml.verdict import training_negatives


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


def overrides(pairs: list[str]) -> dict[str, Any]:
    """`--set name=value` pairs as TrainConfig fields, each parsed as its declared type
    ("none" for a field that may be None)."""
    # The declared types, not the defaults': `width` defaults to None but is an int.
    hints = typing.get_type_hints(TrainConfig)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    parsed: dict[str, Any] = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        if name not in names:
            raise SystemExit(f"--set {pair}: no TrainConfig field {name!r}")
        declared = typing.get_args(hints[name]) or (hints[name],)  # int | None: (int, None)
        kind = next(k for k in declared if k is not type(None))
        if text.lower() == "none" and type(None) in declared:
            parsed[name] = None
        elif kind is bool:
            parsed[name] = text.lower() in ("1", "true", "yes")
        else:
            try:
                parsed[name] = kind(text)
            except ValueError:
                raise SystemExit(f"--set {pair}: {name} takes a {kind.__name__}") from None
    return parsed


def count_syncs(cfg: TrainConfig, train: Split) -> tuple[int, int]:
    """(host syncs, training steps) of one fit, as torch's sync debug mode reports them."""
    steps: list[int] = []
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit(cfg, train.images, train.labels, on_step=steps.append)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    return len(syncs), len(steps)


def gpu_busy_share(cfg: TrainConfig, train: Split) -> float:
    """Share of a fit's wall time during which the GPU ran a kernel or a copy."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        fit(cfg, train.images, train.labels)
        wall = time.perf_counter() - t0
    spans = sorted(
        (e.start_ns(), e.start_ns() + e.duration_ns())
        for e in prof.profiler.kineto_results.events()  # type: ignore[union-attr]
        if e.device_type() == torch.autograd.DeviceType.CUDA
    )
    busy, end = 0, 0
    for start, stop in spans:  # the union: overlapping kernels count once
        if stop > end:
            busy += stop - max(start, end)
            end = stop
    return busy / 1e9 / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="reference,fast,best")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE",
        help="override a TrainConfig field for every recipe but the reference",
    )  # fmt: skip
    parser.add_argument("--busy", action="store_true", help="GPU busy share (CUDA only)")
    parser.add_argument("--syncs", action="store_true", help="count host syncs (CUDA only)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    recipes = args.recipes.split(",")
    if "reference" not in recipes:
        recipes.insert(0, "reference")  # the baseline is always measured in the same run
    seeds = [int(s) for s in args.seeds.split(",")]
    changes = overrides(args.set)
    cuda = pick_device().type == "cuda"

    settings = get_settings()
    train = load_split(args.dataset, "train", settings)
    test = load_split(args.dataset, "test", settings)
    x_test, y_test = to_tensors(test.images, test.labels, torch.device("cpu"))
    print(f"machine: {machine()}; torch {torch.__version__}; dataset {args.dataset}")
    if changes:
        print(f"overrides (all but the reference): {changes}")

    def config(spec: str, seed: int) -> TrainConfig:
        name, *pairs = spec.split("+")
        cfg = get_recipe(name).replace(dataset=args.dataset, seed=seed)
        cfg = cfg if spec == "reference" else cfg.replace(**changes)
        return cfg.replace(**overrides(pairs))

    def save() -> None:
        if args.json:
            figures = {"machine": machine(), "overrides": changes, "runs": runs}
            args.json.write_text(json.dumps(figures, indent=2, default=float))

    runs: dict[str, list[dict[str, Any]]] = {}
    warm_up: dict[str, float] = {}
    for name in recipes:  # untimed: one batch each (and any compilation)
        t0 = time.perf_counter()
        try:
            fit(config(name, 0).replace(dry_run=True), train.images[:4096], train.labels[:4096])
        except Exception as exc:  # a variant that fails is reported, the others still run
            print(f"  {name}: failed: {exc!r}"[:500], flush=True)
            continue
        warm_up[name] = time.perf_counter() - t0

    def measure(name: str, seed: int) -> None:
        cfg = config(name, seed)
        # Made (or read from their cache) before the clock starts, as `digitlab train`
        # loads them with the data: the fit is what is timed.
        negatives, _ = training_negatives(cfg, train, settings)
        t0 = time.perf_counter()
        result = fit(cfg, train.images, train.labels, negatives=negatives)
        seconds = time.perf_counter() - t0
        logits = predict_logits(result.model.cpu().float(), x_test)
        # The digit answered is the best of the ten (an 11th output is "not a digit").
        acc = int((logits[:, :10].argmax(1) == y_test).sum()) / len(y_test)
        images = result.train_size * len(result.history)  # epochs x members
        trained = result.config or cfg
        run = {
            "seed": seed,
            "seconds": seconds,
            "accuracy": acc,
            "images_per_s": images / seconds,
            "batch_size": trained.batch_size,
            "lr": trained.lr,
            "warm_up_seconds": warm_up[name],  # one batch, compilation included
        }
        runs.setdefault(name, []).append(run)
        print(
            f"  {name:10s} seed {seed}: {seconds:7.2f} s  {images / seconds:9,.0f} images/s  "
            f"test accuracy {acc:.2%}  (batch {trained.batch_size}, LR {trained.lr:g})",
            flush=True,
        )
        save()

    def extras(name: str) -> None:
        if args.busy and cuda:
            share = gpu_busy_share(config(name, seeds[0]), train)
            runs[name][0]["gpu_busy"] = share
            print(f"  {name:10s} GPU busy {share:.0%} of a repeat of seed {seeds[0]}'s fit")
            save()
        if args.syncs and cuda:
            syncs, steps = count_syncs(config(name, seeds[0]), train)
            runs[name][0] |= {"host_syncs": syncs, "steps": steps}
            print(f"  {name:10s} {syncs} host syncs in a fit of {steps} steps", flush=True)
            save()

    # Seed by seed, every recipe in turn: this VM's speed drifts within minutes, so each
    # recipe's fit is compared with the reference's fit next to it (paired ratios).
    failed: set[str] = set()
    for seed in seeds:
        for name in recipes:
            if name not in warm_up or name in failed:
                continue
            try:
                measure(name, seed)
            except Exception as exc:
                failed.add(name)
                print(f"  {name}: failed: {exc!r}"[:500], flush=True)
    for name in runs:
        extras(name)
    if "reference" not in runs:
        raise SystemExit("the reference recipe failed: no baseline")

    by_seed = {r["seed"]: r["seconds"] for r in runs["reference"]}
    print()
    print(
        f"| recipe | training s (median of {len(seeds)}) | images/s | GPU busy | test acc mean "
        "| test acc min | speed-up vs reference (median of paired runs) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rs in runs.items():
        med = statistics.median(r["seconds"] for r in rs)
        accs = [r["accuracy"] for r in rs]
        rate = statistics.median(r["images_per_s"] for r in rs)
        busy = f"{rs[0]['gpu_busy']:.0%}" if "gpu_busy" in rs[0] else "n/a"
        ratios = [by_seed[r["seed"]] / r["seconds"] for r in rs if r["seed"] in by_seed]
        speed_up = statistics.median(ratios) if ratios else float("nan")
        print(
            f"| {name} | {med:.2f} | {rate:,.0f} | {busy} | {statistics.mean(accs):.2%} "
            f"| {min(accs):.2%} | {speed_up:.1f}x |"
        )
    save()


if __name__ == "__main__":
    main()
