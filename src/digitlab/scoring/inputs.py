"""What `digitlab score` predicts and stores: a split or a folder of image files, the
first `limit` of them, and of those one shard's contiguous block when sharded.

The source names are global (`dataset:mnist/test/1234` is image 1234 of the split
whichever shard stored it), so the shards of one run store what one unsharded run does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from digitlab.config import Settings
from digitlab.inference.imagefiles import image_paths, load_files, load_folder
from digitlab.scoring.sharding import Shard


@dataclass(frozen=True)
class ScoreInputs:
    images: npt.NDArray[np.uint8]  # (N, 28, 28)
    sources: list[str]
    labels: list[int | None]
    originals: list[bytes | None] | None  # the files as they were, for a folder
    first: int  # the position of images[0] in the (limited) ordered whole


def dataset_source(dataset: str, split: str) -> str:
    return f"dataset:{dataset}/{split}"


def folder_source(folder: Path) -> str:
    return f"folder:{folder.resolve()}"


def dataset_inputs(
    dataset: str, split: str, settings: Settings, *, limit: int | None, shard: Shard | None
) -> ScoreInputs:
    from digitlab.data import load_split

    data = load_split(dataset, split, settings)
    total = len(data.labels[:limit])
    part = shard.block(total) if shard is not None else range(total)
    lo, hi = part.start, part.stop
    return ScoreInputs(
        images=data.images[lo:hi],
        sources=[f"{dataset_source(dataset, split)}/{i}" for i in part],
        labels=[int(y) for y in data.labels[lo:hi]],
        originals=None,
        first=lo,
    )


def folder_inputs(folder: Path, *, limit: int | None, shard: Shard | None) -> ScoreInputs:
    if shard is None:
        files = load_folder(folder)[:limit]  # all decoded before anything is written
        first = 0
    else:
        # Only this shard's files are read and decoded: every file is decoded by exactly
        # one shard, which refuses its block if one of them is broken.
        paths = image_paths(folder)[:limit]
        part = shard.block(len(paths))
        files = load_files(paths[part.start : part.stop])
        first = part.start
    images = np.stack([f.image for f in files]) if files else np.empty((0, 28, 28), dtype=np.uint8)
    return ScoreInputs(
        images=images,
        sources=[f"file:{f.name}"[:200] for f in files],
        labels=[None] * len(files),
        originals=[f.original for f in files],
        first=first,
    )
