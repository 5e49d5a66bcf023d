"""`digitlab score --folder DIR --numbers`: every image file in a folder read as a whole
number (`digitlab.inference.numbers.read_number`, the code behind POST /api/v1/read) and
stored as the API stores a reading. A file whose name starts with digits ("2026.png",
"2026_scan.png") carries its true number, so the run also measures how well it reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from digitlab.inference.numbers import Predict, Reading, read_number
from digitlab.inference.preprocess import ImageError
from digitlab.store import db
from digitlab.store.readings import DigitIn, record_reading

LEADING_DIGITS = re.compile(r"\d+")


def true_number(name: str) -> str | None:
    """The number a file's name gives: the leading digits of its stem, if any."""
    found = LEADING_DIGITS.match(Path(name).stem)
    return found.group() if found else None


def edit_distance(a: str, b: str) -> int:
    """Insertions, deletions and substitutions from `a` to `b` (a missed or extra digit
    costs one, not the whole rest of the number)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def digit_accuracy(text: str, truth: str) -> float:
    """1 - edit distance / length, floored at 0: as bench/read_numbers.py measures it."""
    return max(0.0, 1 - edit_distance(text, truth) / len(truth))


@dataclass
class NumbersResult:
    read: int = 0  # files read and stored, those with no number included
    no_number: int = 0  # of those, how many held no number (an empty reading)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file name, why)
    named: int = 0  # read files whose name gives the true number
    exact: int = 0  # of those, read exactly
    digit_score: float = 0.0  # sum over those of digit_accuracy
    reading_seconds: float = 0.0  # in read_number, over every file read

    @property
    def exact_accuracy(self) -> float | None:
        return self.exact / self.named if self.named else None

    @property
    def digit_accuracy(self) -> float | None:
        return self.digit_score / self.named if self.named else None

    @property
    def ms_per_reading(self) -> float:
        return 1000 * self.reading_seconds / self.read if self.read else 0.0


def store(engine: Engine, reading: Reading, model_id: int, source: str, original: bytes) -> int:
    """The reading, its digits, their inputs, predictions and boxes, in one transaction;
    returns the reading's id. POST /api/v1/read stores its readings through it too."""
    digits = [DigitIn(d.image, d.probabilities, d.is_digit, d.box) for d in reading.digits]
    with db.transaction(engine) as session:
        reading_id, _ = record_reading(
            session,
            original=original,
            source=source[:200],
            model_id=model_id,
            digits=digits,
            confidence=reading.confidence,
            latency_ms=reading.seconds * 1000,
        )
    return reading_id


def score_numbers(
    engine: Engine,
    predict: Predict,
    model_id: int,
    paths: list[Path],
    *,
    on_progress: Callable[[int], None] | None = None,
) -> NumbersResult:
    """Read and store each file in turn. A file that cannot be read (not an image, more
    digits than can be read) stores nothing and is listed in `failed`; the others go on.
    A database failure stops the run: the readings stored before it stay stored."""
    result = NumbersResult()
    for path in paths:
        try:
            original = path.read_bytes()
            reading = read_number(original, predict)
        except (ImageError, OSError) as exc:
            result.failed.append((path.name, str(exc)))
        else:
            store(engine, reading, model_id, f"file:{path.name}", original)
            result.read += 1
            result.no_number += not reading.digits
            result.reading_seconds += reading.seconds
            truth = true_number(path.name)
            if truth is not None:
                result.named += 1
                result.exact += reading.text == truth
                result.digit_score += digit_accuracy(reading.text, truth)
        if on_progress is not None:
            on_progress(1)
    return result
