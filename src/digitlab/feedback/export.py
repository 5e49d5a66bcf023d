"""People's corrections out of the prediction store, as a folder of training data in the
format of `digitlab.data.corrections` (two IDX parts and a manifest):

    digitlab feedback export DIR [--since DATE] [--until DATE] [--model VERSION] [--with-labelled]
                                 [--include-anonymous]

An input's label is its latest labeller feedback: the newest labeller correction over
every prediction made for it. Anonymous corrections (anyone's) go in only with
`include_anonymous`, and only for inputs no labeller has labelled. The filters then
choose which inputs go in (by when that latest feedback was given, and by the version
whose prediction it corrected), so an export never holds
a label that a newer correction has replaced. A prediction the model answered as not a
digit (`is_digit` false) goes in only when a labeller gave it a digit: anyone's word is
not enough to make a doodle training data. The same database and arguments give
byte-identical files.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from digitlab.data.corrections import MANIFEST, PARTS, part_of, write_part
from digitlab.store import db
from digitlab.store.models import IMAGE_BYTES, Feedback, InputData, ModelRow, Prediction
from digitlab.store.review import ANONYMOUS, LABELLER

FORMAT = 1


class ExportError(ValueError):
    """An export that cannot be made as asked (a folder in the way, an unknown version)."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    counts: dict[str, int]  # train, heldout, items
    feedback_ids: list[int]
    manifest: dict[str, Any]
    # Anonymous corrections in the export ("included") and those it left out
    # ("left_out": inputs only anonymous people corrected; 0 with include_anonymous).
    anonymous: dict[str, int]
    # Anonymous corrections of predictions answered as not a digit, left out even with
    # include_anonymous (only a labeller's label brings those in).
    not_digit_left_out: int = 0


@dataclass(frozen=True)
class Item:
    input_id: int
    feedback_id: int | None
    label: int
    model_version: str | None
    predicted: int | None
    image_sha256: str
    part: str
    feedback_at: datetime | None
    image: bytes
    source: str | None = None  # the correction's: labeller or anonymous
    # The corrected prediction's verdict (None: stored before there was one).
    is_digit: bool | None = None

    @property
    def refused_anonymously(self) -> bool:
        """Answered as not a digit, and only an anonymous person said which digit."""
        return self.source == ANONYMOUS and self.is_digit is False

    def to_json(self) -> dict[str, Any]:
        return {
            "input_id": self.input_id,
            "feedback_id": self.feedback_id,
            "label": self.label,
            "model_version": self.model_version,
            "predicted": self.predicted,
            "image_sha256": self.image_sha256,
            "part": self.part,
            "source": self.source,
        }


def utc(moment: datetime | None) -> datetime | None:
    """Aware and in UTC (a naive time is taken as UTC, as the store keeps them)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    found = utc(moment)
    return found.isoformat() if found is not None else None


def latest_per_input(*, include_anonymous: bool) -> Any:
    """One feedback id per corrected input: its latest labeller correction; with
    `include_anonymous`, for inputs without one, its latest anonymous correction. A
    labeller's label always wins over anyone's, however much newer theirs is."""

    def latest(source: str) -> Any:
        return (
            select(func.max(Feedback.id).label("feedback_id"), Prediction.input_id)
            .join(Prediction, Prediction.id == Feedback.prediction_id)
            .where(Feedback.source == source)
            .group_by(Prediction.input_id)
        )

    trusted = latest(LABELLER)
    if not include_anonymous:
        return trusted.subquery()
    labelled = trusted.subquery()
    anyone = latest(ANONYMOUS).where(Prediction.input_id.not_in(select(labelled.c.input_id)))
    return trusted.union_all(anyone).subquery()


def corrected_items(
    session: Session,
    *,
    since: datetime | None,
    until: datetime | None,
    model: str | None,
    include_anonymous: bool = False,
) -> list[Item]:
    """Every input with a correction that counts, labelled by it, filtered on it."""
    latest = latest_per_input(include_anonymous=include_anonymous)
    query = (
        select(Feedback, Prediction.label, Prediction.is_digit, ModelRow.version, InputData)
        .join(latest, latest.c.feedback_id == Feedback.id)
        .join(Prediction, Prediction.id == Feedback.prediction_id)
        .join(ModelRow, ModelRow.id == Prediction.model_id)
        .join(InputData, InputData.id == Prediction.input_id)
        .order_by(InputData.id)
    )
    if since is not None:
        query = query.where(Feedback.created_at >= since)
    if until is not None:
        query = query.where(Feedback.created_at < until)
    if model is not None:
        query = query.where(ModelRow.version == model)
    return [
        Item(
            input_id=row.id,
            feedback_id=fb.id,
            label=fb.label,
            model_version=version,
            predicted=predicted,
            image_sha256=row.sha256,
            part=part_of(row.sha256),
            feedback_at=utc(fb.created_at),
            image=row.image,
            source=fb.source,
            is_digit=is_digit,
        )
        for fb, predicted, is_digit, version, row in session.execute(query)
    ]


def anonymous_left_out(session: Session) -> int:
    """Inputs whose only corrections are anonymous: what `include_anonymous` would add."""
    counts = [
        session.scalar(select(func.count()).select_from(latest_per_input(include_anonymous=a)))
        for a in (True, False)
    ]
    return int(counts[0] or 0) - int(counts[1] or 0)


def labelled_items(
    session: Session, *, since: datetime | None, until: datetime | None
) -> list[Item]:
    """Inputs that came with a trusted label and have no labeller feedback, by when they
    came (their anonymous corrections, if any, do not count against that label)."""
    corrected = (
        select(Prediction.input_id)
        .join(Feedback, Feedback.prediction_id == Prediction.id)
        .where(Feedback.source == LABELLER)
    )
    query = (
        select(InputData)
        .where(InputData.label.is_not(None), InputData.id.not_in(corrected))
        .order_by(InputData.id)
    )
    if since is not None:
        query = query.where(InputData.created_at >= since)
    if until is not None:
        query = query.where(InputData.created_at < until)
    return [
        Item(
            input_id=row.id,
            feedback_id=None,
            label=int(row.label),
            model_version=None,
            predicted=None,
            image_sha256=row.sha256,
            part=part_of(row.sha256),
            feedback_at=None,
            image=row.image,
        )
        for row in session.scalars(query)
        if row.label is not None
    ]


def check_target(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ExportError(f"{out_dir} exists and is not an empty folder; choose a new one")


def write_folder(folder: Path, items: list[Item], manifest: dict[str, Any]) -> dict[str, str]:
    """Both parts (either may hold 0 images) and the manifest; returns name -> SHA-256."""
    files: dict[str, str] = {}
    for part in PARTS:
        chosen = [item for item in items if item.part == part]
        images = np.frombuffer(b"".join(i.image for i in chosen), dtype=np.uint8)
        labels = np.array([i.label for i in chosen], dtype=np.uint8)
        files |= write_part(folder, part, images.reshape(-1, 28, 28), labels)
    manifest["files"] = dict(sorted(files.items()))
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (folder / MANIFEST).write_text(text)
    return files


def export(
    engine: Engine,
    out_dir: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | None = None,
    with_labelled: bool = False,
    include_anonymous: bool = False,
) -> ExportResult:
    """Write the labellers' corrections (with `include_anonymous` also anonymous ones,
    where no labeller labelled the input; with `with_labelled` the labelled inputs
    without any) to `out_dir`, which must not exist or be empty; `since` is inclusive,
    `until` exclusive. The folder appears whole or not at all."""
    since, until = utc(since), utc(until)
    check_target(out_dir)
    with db.transaction(engine) as session:
        if (
            model is not None
            and session.scalar(select(ModelRow.id).where(ModelRow.version == model)) is None
        ):
            raise ExportError(f"no model version {model!r} in the database")
        items = corrected_items(
            session, since=since, until=until, model=model, include_anonymous=include_anonymous
        )
        left_out = 0 if include_anonymous else anonymous_left_out(session)
        not_digit = sum(i.refused_anonymously for i in items)
        items = [i for i in items if not i.refused_anonymously]
        if with_labelled:
            extra = labelled_items(session, since=since, until=until)
            items = sorted(items + extra, key=lambda i: i.input_id)
    for item in items:
        if len(item.image) != IMAGE_BYTES:
            raise ExportError(f"input {item.input_id}: stored image has {len(item.image)} bytes")

    times = [i.feedback_at for i in items if i.feedback_at is not None]
    feedback_ids = sorted(i.feedback_id for i in items if i.feedback_id is not None)
    counts = {part: sum(i.part == part for i in items) for part in PARTS} | {"items": len(items)}
    anonymous = {"included": sum(i.source == ANONYMOUS for i in items), "left_out": left_out}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "filters": {
            "since": iso(since),
            "until": iso(until),
            "model": model,
            "with_labelled": with_labelled,
            "include_anonymous": include_anonymous,
        },
        "time_range": [iso(min(times)), iso(max(times))] if times else None,
        "counts": counts,
        "anonymous": anonymous,
        "not_digit_left_out": not_digit,
        "feedback_ids": feedback_ids,
        "items": [i.to_json() for i in items],
    }

    # A sibling folder renamed into place at the end: a failure leaves no half export.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        write_folder(staging, items, manifest)
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked above
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(
        path=out_dir,
        counts=counts,
        feedback_ids=feedback_ids,
        manifest=manifest,
        anonymous=anonymous,
        not_digit_left_out=not_digit,
    )
