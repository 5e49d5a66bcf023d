"""Types of what a request carries, checked at the edge and stated in the schema, so that
no value can reach a store that cannot hold it: ids and offsets within 64 bits, whole
numbers written as digits, true/false for booleans, text without control characters,
version ids as the registry names them. Both stores then see the same values."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, BeforeValidator, Field

from digitlab.registry.versions import VERSION_RE

INT64_MAX = 2**63 - 1  # the largest id either store's integer column holds
# C0 controls but tab, newline and carriage return, and DEL: PostgreSQL text cannot
# hold NUL, and none of them belongs in a note or a name.
TEXT_PATTERN = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F]*$"
_CONTROL = re.compile(r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]")
VERSION_PATTERN = VERSION_RE.pattern
# RFC 3339 (`T` or a space between date and time); without an offset the time is UTC.
_DATE_TIME = re.compile(
    r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(:\d\d(\.\d+)?)?([Zz]|[+-]\d\d:?\d\d)?", re.ASCII
)


def _whole_number(value: Any) -> Any:
    # Pydantic reads "+1", " 1" and "1_000" as 1 too; the schema says integer (for which
    # JSON Schema counts 1.0 as well).
    if isinstance(value, str) and not re.fullmatch(r"-?[0-9]+(\.0*)?", value, re.ASCII):
        raise ValueError("should be a whole number written in digits")
    return value


def json_integer(value: Any) -> Any:
    """A JSON integer, as JSON Schema counts them: 7 or 7.0, never true or "7" (which
    Pydantic would read as 1 and 7)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("should be an integer")
    return value


def _true_or_false(value: Any) -> Any:
    # Pydantic also reads 1, 0, yes, no, on, off, t, f as booleans; the schema says boolean.
    if isinstance(value, str) and value.lower() not in ("true", "false"):
        raise ValueError("should be true or false")
    return value


def _date_time(value: Any) -> Any:
    # Pydantic also reads "2026-01-01" and "1764547200" (a Unix time) as date-times.
    if isinstance(value, str) and not _DATE_TIME.fullmatch(value):
        raise ValueError("should be an RFC 3339 date-time, e.g. 2026-11-27T10:00:00Z")
    return value


def utf8_text(value: object) -> object:
    """A clear message for a lone surrogate (`"\\ud800"` in JSON), which is no character
    and cannot be stored, before pydantic's raw codec message."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                "holds a lone UTF-16 surrogate (such as \\ud800), which is not a character:"
                " send text only"
            ) from None
    return value


def plain_text(value: str | None) -> str | None:
    if value is not None and _CONTROL.search(value):
        raise ValueError("control characters (such as NUL) are not allowed")
    return value


def utc(moment: datetime | None) -> datetime | None:
    """Naive times are taken as UTC; a time at the calendar's edge stays at the edge
    (0001-01-01T00:00:00+01:00 is before any stored time, not an error)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if moment.year == 1 else datetime.max
        return edge.replace(tzinfo=UTC)


def row_id(what: str) -> Any:
    """A path parameter holding a row id: 1..2^63-1."""
    return Path(ge=1, le=INT64_MAX, description=f"The {what}'s id")


WholeNumber = BeforeValidator(_whole_number)
Boolean = BeforeValidator(_true_or_false)
DateTime = BeforeValidator(_date_time)

PredictionId = Annotated[int, row_id("prediction"), WholeNumber]
InputId = Annotated[int, row_id("input"), WholeNumber]
Offset = Annotated[
    int, Query(ge=0, le=INT64_MAX, description="Skip this many (newest first)"), WholeNumber
]
Version = Annotated[
    str,
    Path(
        pattern=VERSION_PATTERN,
        description="A model version id, e.g. 20261127-101500-mnist-cnn",
        examples=["20261127-101500-mnist-cnn"],
    ),
]
# A text field of a body (a note): no control characters, on either store.
PlainText = Annotated[
    str,
    BeforeValidator(utf8_text),
    AfterValidator(plain_text),
    Field(json_schema_extra={"pattern": TEXT_PATTERN}),
]
