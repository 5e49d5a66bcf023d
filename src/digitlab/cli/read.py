"""`digitlab read FILE...`: the whole number in each picture, one line per file (a folder
stands for the pictures in it). Reads with the registry's current model; stores nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from digitlab.cli.common import friendly_errors, print_error

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def pictures(paths: list[Path]) -> list[Path]:
    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(path)
    return found


def read(
    files: Annotated[list[Path], typer.Argument(help="Image files of numbers, or folders")],
    boxes: Annotated[bool, typer.Option(help="Also print each digit's box")] = False,
) -> None:
    """Read the whole number (1 to 12 digits) in each image file."""
    from digitlab.config import get_settings
    from digitlab.inference.numbers import read_number
    from digitlab.inference.predictor import Predictor
    from digitlab.inference.preprocess import ImageError

    predictor = Predictor(get_settings().model_dir)
    failed = 0
    for path in pictures(files):
        try:
            reading = read_number(path.read_bytes(), predictor.predict)
        except (ImageError, OSError) as exc:
            print_error(f"{path}: {exc}")
            failed += 1
            continue
        line = f"{path}\t{reading.text}\t{reading.confidence:.3f}"
        if boxes:
            line += "\t" + " ".join(
                f"{d.prediction}@{','.join(map(str, d.box))}" for d in reading.digits
            )
        typer.echo(line)
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("read")(friendly_errors(read))
