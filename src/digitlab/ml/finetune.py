"""Training that builds on what exists: a parent version's weights as the starting point
(`digitlab train --from VERSION`) and a folder of people's corrections appended to the
training images (`--extra DIR --extra-weight W`).

    cfg, sources = prepare(cfg, settings.model_dir)  # fails fast, before any training
    train_and_register(cfg, settings, sources=sources)

Only the corrections folder's `train` part is ever loaded here; its `heldout` part is for
judging a model, never for training one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from digitlab.data import DataError, Split
from digitlab.data.corrections import load_part, read_manifest
from digitlab.ml.model import build_model
from digitlab.ml.recipes import NEGATIVES, TrainConfig
from digitlab.registry import versions as registry

WEIGHTS_FILE = "model.pt"
# Settings a fine-tuned network must share with its parent; the parent's win.
INHERITED = ("arch", "width", "hidden", "members")


@dataclass(frozen=True)
class Parent:
    """A version's saved network, checked to load into its architecture."""

    version: str
    arch: str
    width: int | None
    hidden: int
    state_dict: dict[str, torch.Tensor]
    outputs: int = 10  # 11: with "none of the ten" (trained on negatives)


@dataclass(frozen=True)
class Extra:
    """The train part of a corrections folder, with the manifest that vouches for it."""

    folder: Path
    train: Split
    manifest: dict[str, Any]


@dataclass(frozen=True)
class Sources:
    """What a run builds on besides its dataset."""

    parent: Parent | None = None
    extra: Extra | None = None
    # Recipe settings the parent replaced: name -> {"recipe": asked, "parent": used}.
    overridden: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_parent(model_dir: Path, version: str) -> Parent:
    """The single network saved in `version`'s folder; RegistryError when there is none."""
    path = registry.load_version(model_dir, version).path / WEIGHTS_FILE
    if not path.is_file():
        raise registry.RegistryError(
            f"model {version} has no {WEIGHTS_FILE} to fine-tune from (only its ONNX file)"
        )
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        members = int(saved.get("members", 1))
        arch, width, hidden = saved["arch"], saved.get("width"), int(saved.get("hidden", 0))
        state = saved["state_dict"]
        outputs = int(saved.get("outputs", 10))  # saved before the verdict: ten
    except Exception as exc:  # a damaged or foreign file: any unpickling error
        raise registry.RegistryError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    if members != 1:
        raise registry.RegistryError(
            f"model {version} is an ensemble of {members} networks; "
            "fine-tuning starts from a single network"
        )
    try:
        build_model(arch, width, hidden, outputs).load_state_dict(state)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        raise registry.RegistryError(f"{path}: does not fit {arch!r} ({first})") from None
    return Parent(version, arch, width, hidden, state, outputs)


def load_extra(folder: Path) -> Extra:
    """A corrections folder's train part, every file checked against the manifest."""
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; make it with `digitlab feedback export`")
    manifest = read_manifest(folder)
    return Extra(folder, load_part(folder, "train"), manifest)


def prepare(cfg: TrainConfig, model_dir: Path) -> tuple[TrainConfig, Sources]:
    """Load the parent and the extra images `cfg` names, and take the parent's network
    settings over the recipe's. Raises DataError / RegistryError / ValueError before
    anything trains."""
    if cfg.extra_weight <= 0 or not math.isfinite(cfg.extra_weight):
        raise ValueError(f"extra_weight must be a number > 0, not {cfg.extra_weight}")
    extra = load_extra(Path(cfg.extra)) if cfg.extra is not None else None
    if cfg.parent is None:
        return cfg, Sources(extra=extra)
    parent = load_parent(model_dir, cfg.parent)
    inherited: dict[str, Any] = {
        "arch": parent.arch,
        "width": parent.width,
        "hidden": parent.hidden,
        "members": 1,
    }
    # The child has the parent's outputs: negatives go on (at the recipe's share, else the
    # served recipes') when the parent has "none of the ten", and stop when it has not.
    if parent.outputs == 11:
        inherited["negatives"] = cfg.negatives if cfg.negatives > 0 else NEGATIVES
    else:
        inherited["negatives"] = 0.0
    overridden = {
        name: {"recipe": getattr(cfg, name), "parent": value}
        for name, value in inherited.items()
        if getattr(cfg, name) != value
    }
    return cfg.replace(**inherited), Sources(parent, extra, overridden)


def repeat_counts(n: int, weight: float, seed: int) -> npt.NDArray[np.int64]:
    """How many copies of each of `n` extra images go into the training set so that each
    counts `weight` times as much as an MNIST image: floor(weight) copies each, plus one
    more with probability frac(weight), drawn from a generator of its own seeded by `seed`
    (so runs without extra images draw exactly what they always drew)."""
    whole = math.floor(weight)
    more = np.random.default_rng(seed).random(n) < weight - whole
    return np.full(n, whole, dtype=np.int64) + more


def weighted_extra(
    images: npt.NDArray[np.uint8], labels: npt.NDArray[np.uint8], weight: float, seed: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The extra images and labels, each repeated per `repeat_counts`."""
    counts = repeat_counts(len(labels), weight, seed)
    return np.repeat(images, counts, axis=0), np.repeat(labels, counts, axis=0)


def lineage(sources: Sources, cfg: TrainConfig, extra_samples: int) -> dict[str, Any]:
    """The card's record of what the model was built from besides its dataset."""
    extra = sources.extra
    return {
        "parent": sources.parent.version if sources.parent else None,
        "overridden": sources.overridden,
        "extra": None
        if extra is None
        else {
            "folder": str(extra.folder),
            "images": len(extra.train.labels),
            "weight": cfg.extra_weight,
            "samples": extra_samples,  # copies in the training set after weighting
            "feedback_ids": list(extra.manifest.get("feedback_ids", [])),
            "files": dict(extra.train.checksums),
        },
    }
