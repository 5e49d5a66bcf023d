"""Predict and record: the reference pipeline (`digitlab demo`) and bulk scoring
(`digitlab score`), composed from onnxruntime inference and the prediction store.

digitlab demo --count 3
digitlab score --dataset mnist --split test
digitlab score --dataset mnist --split train --shard 0/2   (and 1/2 in another process)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digitlab.data import Split
from digitlab.inference.preprocess import model_input
from digitlab.inference.runtime import OnnxClassifier
from digitlab.inference.verdict import split_outputs, verdict_threshold
from digitlab.scoring.sharding import Shard
from digitlab.store import crud, db, shards

CHUNK = 1000  # images per inference call and per write; the progress bar's step


@dataclass(frozen=True)
class ScoreResult:
    stored: int
    labelled: int  # how many came with a true label
    correct: int  # of those, how many the model got right
    seconds: float
    refused: int = 0  # answered as not a digit (`is_digit` false)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


def score(
    engine: Engine,
    classifier: OnnxClassifier,
    model_id: int,
    images: npt.NDArray[np.uint8],
    *,
    sources: Sequence[str],
    labels: Sequence[int | None],
    originals: Sequence[bytes | None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ScoreResult:
    """Predict every image and store inputs and predictions in one transaction: all of
    them or, on any failure, none."""
    start = time.perf_counter()
    with db.transaction(engine) as session:
        labelled, correct, refused = store_scores(
            session, classifier, model_id, images,
            sources=sources, labels=labels, originals=originals, on_progress=on_progress,
        )  # fmt: skip
    return ScoreResult(len(images), labelled, correct, time.perf_counter() - start, refused)


def judge(
    classifier: OnnxClassifier, images: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """(N, 10) digit probabilities and the (N,) not-a-digit verdicts, as the service
    gives them (digitlab.inference.verdict)."""
    probs, scores = split_outputs(classifier.logits(model_input(images)))
    return probs, scores >= verdict_threshold(classifier.model)


def store_scores(
    session: Session,
    classifier: OnnxClassifier,
    model_id: int,
    images: npt.NDArray[np.uint8],
    *,
    sources: Sequence[str],
    labels: Sequence[int | None],
    originals: Sequence[bytes | None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[int, int, int]:
    """Predict and store chunk by chunk in the caller's transaction; returns how many
    came with a true label, how many of those the model got right, and how many it
    answered as not a digit."""
    labelled = correct = refused = 0
    for lo in range(0, len(images), CHUNK):
        hi = min(lo + CHUNK, len(images))
        t = time.perf_counter()
        probs, is_digit = judge(classifier, images[lo:hi])
        per_image_ms = (time.perf_counter() - t) * 1000 / (hi - lo)
        crud.record_batch(
            session,
            images=images[lo:hi],
            probabilities=probs,
            model_id=model_id,
            sources=sources[lo:hi],
            labels=labels[lo:hi],
            latency_ms=per_image_ms,
            originals=originals[lo:hi] if originals is not None else None,
            is_digit=is_digit.tolist(),
        )
        refused += int((~is_digit).sum())
        for predicted, label in zip(probs.argmax(axis=1), labels[lo:hi], strict=True):
            if label is not None:
                labelled += 1
                correct += int(predicted == label)
        if on_progress is not None:
            on_progress(hi - lo)
    return labelled, correct, refused


@dataclass(frozen=True)
class StoredBefore:
    """A shard found already stored (by an earlier or a concurrent run): what its marker
    says. Nothing was stored this time."""

    images: int
    model_id: int
    created_at: datetime


def stored_before(engine: Engine, *, job: str, shard: Shard) -> StoredBefore | None:
    """The marker of `shard` of `job`, if that shard is stored."""
    with db.transaction(engine) as session:
        found = shards.find_shard(session, job=job, shard=shard.index, shards=shard.count)
        if found is None:
            return None
        return StoredBefore(found.images, found.model_id, found.created_at)


class _ShardTakenError(Exception):
    """The marker's INSERT failed: most likely a concurrent run of the shard committed."""


def score_shard(
    engine: Engine,
    classifier: OnnxClassifier,
    model_id: int,
    images: npt.NDArray[np.uint8],
    *,
    job: str,
    shard: Shard,
    sources: Sequence[str],
    labels: Sequence[int | None],
    originals: Sequence[bytes | None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ScoreResult | StoredBefore:
    """`score` for one shard of `job`, its marker inserted first in the same transaction:
    the rows and the marker commit together or not at all. A shard already stored, or
    stored by a concurrent run while this one waited on the marker's unique index, stores
    nothing and returns that marker's figures."""
    start = time.perf_counter()
    try:
        with db.transaction(engine) as session:
            found = shards.find_shard(session, job=job, shard=shard.index, shards=shard.count)
            if found is not None:
                return StoredBefore(found.images, found.model_id, found.created_at)
            try:
                shards.record_shard(
                    session, job=job, shard=shard.index, shards=shard.count,
                    model_id=model_id, images=len(images),
                )  # fmt: skip
            except IntegrityError:
                raise _ShardTakenError from None  # leaves the block: the transaction rolls back
            labelled, correct, refused = store_scores(
                session, classifier, model_id, images,
                sources=sources, labels=labels, originals=originals, on_progress=on_progress,
            )  # fmt: skip
    except _ShardTakenError:
        # Only a committed marker explains the failure; anything else is a real error.
        other = stored_before(engine, job=job, shard=shard)
        if other is None:
            raise db.StoreError(
                f"the database refused the marker of shard {shard} of job {job!r}; "
                "nothing was stored"
            ) from None
        return other
    return ScoreResult(len(images), labelled, correct, time.perf_counter() - start, refused)


@dataclass(frozen=True)
class DemoSample:
    input_id: int
    prediction_id: int
    source: str
    true_label: int
    predicted: int
    confidence: float


def demo(
    engine: Engine,
    classifier: OnnxClassifier,
    model_id: int,
    split: Split,
    *,
    count: int,
    rng: np.random.Generator,
) -> list[DemoSample]:
    """What the reference application did, per sample and in one transaction each:
    store the image, read it back and check it bit for bit, predict the stored copy,
    store the prediction linked to it."""
    samples = []
    for index in rng.choice(len(split.labels), size=count, replace=False):
        image, label = split.images[index], int(split.labels[index])
        source = f"dataset:{split.dataset}/{split.split}/{index}"
        with db.transaction(engine) as session:
            input_id = crud.record_input(session, image=image, source=source, label=label)
            stored = crud.read_image(session, input_id=input_id)
            if stored.tobytes() != image.tobytes():
                raise db.StoreError(f"input {input_id}: the stored image differs from the original")
            t = time.perf_counter()
            found, is_digit = judge(classifier, stored[None])
            probs = found[0]
            latency_ms = (time.perf_counter() - t) * 1000
            prediction_id = crud.record_prediction(
                session,
                input_id=input_id,
                model_id=model_id,
                probabilities=probs,
                latency_ms=latency_ms,
                is_digit=bool(is_digit[0]),
            )
        samples.append(
            DemoSample(
                input_id, prediction_id, source, label, int(probs.argmax()), float(probs.max())
            )
        )
    return samples
