"""One training run end to end: data -> fit -> test -> ONNX export -> model folder.

digitlab train --recipe fast     # the CLI wraps `train_and_register`
digitlab train --from VERSION --extra DIR     # fine-tuning, with corrections

Each phase is timed into the card (`metrics.phase_seconds`: load, fit, test, export, onnx)
and logged (save, too): the command's time beyond the fit is the rest, plus imports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import logging
import platform
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from digitlab.config import Settings
from digitlab.data import Split, load_split
from digitlab.evaluation import drift
from digitlab.evaluation.report import confusion_matrix
from digitlab.ml.export import (
    INPUT_NAME,
    OPSET,
    OUTPUT_NAME,
    check_parity,
    export_onnx,
    fold_model,
    onnx_logits,
)
from digitlab.ml.finetune import Sources, lineage, prepare
from digitlab.ml.model import MNIST_MEAN, MNIST_STD
from digitlab.ml.recipes import TrainConfig
from digitlab.ml.train import FitResult, fit, predict_logits, to_tensors
from digitlab.ml.verdict import training_negatives, verdict_card, verdict_test_metrics
from digitlab.registry import versions as registry

PACKAGES = ("torch", "onnx", "onnxruntime", "numpy", "digitlab")
log = logging.getLogger(__name__)


class PhaseTimer:
    """Wall seconds per named phase of a run, in the order they ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - t0, 3)
            log.info("phase %s: %.2f s", name, self.seconds[name])


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """float32 convolutions on a GPU as on a CPU (no TF32), so that the torch logits the
    ONNX file is checked against are the model's own."""
    if device.type != "cuda":
        yield
        return
    with torch.backends.cudnn.flags(enabled=True, deterministic=True, allow_tf32=False):
        yield


def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_commit() -> str | None:
    """The commit of the source tree, with '-dirty' when it has uncommitted changes."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def test_metrics(
    result: FitResult, test: Split, staging: Path, phase: PhaseTimer | None = None
) -> dict[str, Any]:
    """Test-set figures of the torch model, on the device it trained on (one upload, big
    batches, float32), then export it once (leaving `result.model` on the CPU) and check
    the ONNX file against those logits."""
    phase = phase or PhaseTimer()
    model = result.model.float().eval()
    with phase("test"):
        device = next(model.parameters()).device
        x, y = to_tensors(test.images, test.labels, device)
        with full_precision(device):
            logits = predict_logits(model, x)
        hits = (logits[:, :10].argmax(1) == y).sum().float()  # exact: counts below 2**24
        loss, correct = torch.stack([F.cross_entropy(logits, y), hits]).tolist()  # one read
        metrics: dict[str, Any] = {
            "test_accuracy": int(correct) / len(y),
            "test_loss": float(loss),
        }
        torch_logits = logits.cpu().numpy()
    onnx_path = staging / registry.ONNX_FILE
    with phase("export"):
        export_onnx(fold_model(model.cpu()), onnx_path)
    with phase("onnx"):
        pixels = (test.images[:, None].astype(np.float32) / 255.0).astype(np.float32)
        served = onnx_logits(onnx_path, pixels)
        metrics |= check_parity(torch_logits, served, test.labels)
    # In the card, so the Models page can draw it where the test set is not at hand
    # (the api container has no MNIST files).
    # Digits only: an 11th output ("none of the ten") is the verdict's, not a digit.
    digit_logits = served[:, :10]
    metrics["test_confusion"] = confusion_matrix(test.labels, digit_logits.argmax(1)).tolist()
    metrics |= drift.confidence_reference(digit_logits)  # the monitor's reference
    metrics |= verdict_test_metrics(served, result.digit_threshold)
    return metrics


def build_card(
    version: str,
    cfg: TrainConfig,
    result: FitResult,
    train: Split,
    test: Split,
    metrics: dict[str, Any],
    onnx_path: Path,
    sources: Sources | None = None,
) -> dict[str, Any]:
    # The last epoch of the last member; none when a parent was re-exported (0 epochs).
    last = result.history[-1] if result.history else None
    return {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {
            "name": cfg.dataset,
            "train_size": result.train_size,  # extra images' copies included
            "class_counts": drift.class_counts(train.labels),  # the monitor's training mix
            "checksums": train.checksums | test.checksums,  # the dataset's files only
        },
        "lineage": lineage(sources or Sources(), cfg, result.extra_samples),
        "recipe": cfg.recipe,
        "seed": cfg.seed,
        "config": cfg.to_dict(),
        # What training did to the images (digitlab.ml.augment), zero = off.
        "augmentation": dataclasses.asdict(cfg.augmentation()),
        "metrics": metrics
        | {
            "val_accuracy": result.val_acc,
            "train_seconds": round(result.train_seconds, 3),
            "images_per_s": round(last["images_per_s"], 1) if last else None,
            "device": result.device,
        },
        "history": result.history,
        "input": {
            "name": INPUT_NAME,
            "shape": ["batch", 1, 28, 28],
            "dtype": "float32",
            "range": [0.0, 1.0],
            "ink": "light on dark (MNIST convention)",
            "normalisation": {"mean": MNIST_MEAN, "std": MNIST_STD, "inside_model": True},
        },
        "onnx": {
            "file": registry.ONNX_FILE,
            "sha256": registry.file_sha256(onnx_path),
            "opset": OPSET,
            "output": OUTPUT_NAME,
            "batchnorm_folded": True,
        },
        "libraries": library_versions(),
        "git_commit": git_commit(),
    }


def _import_onnx() -> None:
    """The ONNX export imports the onnx package (0.8 s on the 2-core VM, most of it
    loading ml_dtypes' extension); imported in a thread beside the fit, whose kernels
    leave the interpreter free, it is ready when the export needs it. Where it is
    missing, the export says so itself."""
    with contextlib.suppress(ImportError):
        importlib.import_module("onnx")


def train_and_register(
    cfg: TrainConfig,
    settings: Settings,
    *,
    activate: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    sources: Sources | None = None,
) -> registry.ModelVersion:
    """Train per `cfg`, export, verify, and publish a new model version. `sources`: the
    parent and extra images `finetune.prepare` loaded for `cfg` (which it returned); when
    None they are loaded here."""
    if sources is None:
        cfg, sources = prepare(cfg, settings.model_dir)
    if cfg.dataset != "mnist":  # "not a digit" means nothing for clothing photos
        cfg = cfg.replace(negatives=0.0)
    phase = PhaseTimer()
    with phase("load"):
        train = load_split(cfg.dataset, "train", settings)
        test = load_split(cfg.dataset, "test", settings)
        negatives, negatives_record = training_negatives(cfg, train, settings)
    extra = sources.extra.train if sources.extra else None
    threading.Thread(target=_import_onnx, daemon=True).start()
    with phase("fit"):
        result = fit(
            cfg,
            train.images,
            train.labels,
            extra=(extra.images, extra.labels) if extra else None,
            init=sources.parent.state_dict if sources.parent else None,
            negatives=negatives,
            on_epoch=on_epoch,
            on_step=on_step,
        )
    cfg = result.config or cfg  # as trained: batch and LR sized for the device
    model_dir = settings.model_dir
    version = registry.new_version_id(model_dir, cfg.dataset, cfg.recipe)
    staging = registry.staging_dir(model_dir)
    try:
        t0 = time.perf_counter()
        metrics = test_metrics(result, test, staging, phase)
        metrics["export_seconds"] = round(time.perf_counter() - t0, 3)
        with phase("save"):
            torch.save(
                {
                    "arch": cfg.arch,
                    "width": cfg.width,
                    "hidden": cfg.hidden,
                    "members": cfg.members,
                    "outputs": cfg.outputs,
                    "state_dict": result.model.state_dict(),
                },
                staging / "model.pt",
            )
            metrics["phase_seconds"] = phase.seconds  # the save's own time lands after
            card = build_card(
                version, cfg, result, train, test, metrics, staging / registry.ONNX_FILE, sources
            )
            card["verdict"] = verdict_card(
                cfg, result.digit_threshold, result.negative_samples, negatives_record
            )
            card["onnx"]["outputs"] = cfg.outputs
            (staging / registry.CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
            published = registry.publish(staging, model_dir, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if activate or registry.current_version(model_dir) is None:
        registry.set_current(model_dir, version)
    return published
