"""Group commit on the event loop: predictions that arrive together are scored in one
model call and stored in one write, so concurrent clients share the database round trip
and the commit's flush instead of queueing for them one by one.

There is no writer thread. A drain task runs on the loop while jobs are waiting; while
it awaits the database, the loop goes on reading requests, and whatever arrived meanwhile
is the next group. A thread in between cost two wake-ups and GIL hand-offs per group.

Each request's input and prediction are in the same transaction, committed before its
answer is sent; when a group's write fails, every request in it gets the error and
nothing of the group is stored.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from digitlab.inference.predictor import Batch

MAX_GROUP = 256  # images per group: one model call, one write

Ids = list[tuple[int, int]]  # (input id, prediction id) per image


class Store(Protocol):
    """Predict and store a group; `anonymous`: per image, a label an anonymous client
    gave, kept as its anonymous feedback (passed only when the group has one)."""

    def __call__(
        self,
        digits: npt.NDArray[np.uint8],
        sources: list[str],
        labels: list[int | None],
        originals: list[bytes | None],
        anonymous: list[int | None] | None = None,
    ) -> Awaitable[tuple[Batch, Ids]]: ...


@dataclass
class Job:
    digits: npt.NDArray[np.uint8]  # (n, 28, 28)
    sources: list[str]
    labels: list[int | None]
    originals: list[bytes | None]
    future: asyncio.Future[tuple[Batch, Ids]]
    anonymous: list[int | None] | None = None


class GroupWriter:
    """Hands each group of waiting jobs (up to MAX_GROUP images) to one `store` call; a
    job that finds the writer idle is written at once, never held back."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._waiting: deque[Job] = deque()
        self._task: asyncio.Task[None] | None = None

    async def submit(
        self,
        digits: npt.NDArray[np.uint8],
        *,
        sources: list[str],
        labels: list[int | None],
        originals: list[bytes | None],
        anonymous: list[int | None] | None = None,
    ) -> tuple[Batch, Ids]:
        """Predict and store `digits`; returns once their group is committed."""
        future: asyncio.Future[tuple[Batch, Ids]] = asyncio.get_running_loop().create_future()
        self._waiting.append(Job(digits, sources, labels, originals, future, anonymous))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        return await future

    async def close(self) -> None:
        """Wait until every job submitted so far is written."""
        if self._task is not None:
            await self._task

    async def _drain(self) -> None:
        try:
            while self._waiting:
                group, size = [], 0
                while self._waiting and size < MAX_GROUP:
                    job = self._waiting.popleft()
                    group.append(job)
                    size += len(job.digits)
                await self._write(group)
        finally:
            self._task = None

    async def _write(self, group: list[Job]) -> None:
        extra = {}
        if any(j.anonymous for j in group):
            extra["anonymous"] = [a for j in group for a in (j.anonymous or [None] * len(j.digits))]
        try:
            batch, ids = await self._store(
                np.concatenate([j.digits for j in group]),
                [s for j in group for s in j.sources],
                [label for j in group for label in j.labels],
                [o for j in group for o in j.originals],
                **extra,
            )
        except BaseException as exc:  # every request of the group gets the error
            for job in group:
                if not job.future.done():  # its request may have been cancelled
                    job.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        lo = 0
        for job in group:
            hi = lo + len(job.digits)
            if not job.future.done():
                part = Batch(
                    batch.model,
                    batch.probabilities[lo:hi],
                    batch.seconds,
                    batch.is_digit[lo:hi],
                    None if batch.scores is None else batch.scores[lo:hi],
                )
                job.future.set_result((part, ids[lo:hi]))
            lo = hi
