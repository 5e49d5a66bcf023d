"""A real corrections folder for training tests, written with the format's own writer
(`digitlab.data.corrections`) as `digitlab feedback export` lays it out."""

from __future__ import annotations

import json
from pathlib import Path

from digitlab.data import Split
from digitlab.data.corrections import MANIFEST, write_part


def make_corrections(folder: Path, source: Split, *, train: int = 30, heldout: int = 10) -> Path:
    """`train` then `heldout` images of `source`, feedback ids 1.. in that order."""
    folder.mkdir(parents=True, exist_ok=True)
    end = train + heldout
    files = write_part(folder, "train", source.images[:train], source.labels[:train])
    files |= write_part(folder, "heldout", source.images[train:end], source.labels[train:end])
    manifest = {
        "files": files,
        "feedback_ids": list(range(1, end + 1)),
        "counts": {"train": train, "heldout": heldout},
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return folder
