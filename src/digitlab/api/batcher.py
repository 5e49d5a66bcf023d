"""Group commit: predictions that arrive together are scored in one model call and stored
in one transaction by a single writer thread, so concurrent clients share the database
round trips and the commit's flush to disk instead of queueing for them one by one.

Each request's input and prediction are in the same transaction, committed before its
answer is sent; when a group's transaction fails, every request in it gets the error and
nothing of the group is stored.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from digitlab.predictor import Batch

MAX_GROUP = 256  # images per group: one model call, one transaction


@dataclass
class Job:
    digits: npt.NDArray[np.uint8]  # (n, 28, 28)
    sources: list[str]
    labels: list[int | None]
    originals: list[bytes | None]
    future: Future[tuple[Batch, list[tuple[int, int]]]] = field(default_factory=Future)


Store = Callable[
    [npt.NDArray[np.uint8], list[str], list[int | None], list[bytes | None]],
    tuple[Batch, list[tuple[int, int]]],
]


class GroupWriter:
    """A writer thread that drains whatever is queued (up to MAX_GROUP images) into one
    call of `store`; one waiting job alone is written at once, never held back."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(
        self,
        digits: npt.NDArray[np.uint8],
        *,
        sources: list[str],
        labels: list[int | None],
        originals: list[bytes | None],
    ) -> Future[tuple[Batch, list[tuple[int, int]]]]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="group-writer", daemon=True)
                self._thread.start()
        job = Job(digits, sources, labels, originals)
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
                self._thread = None

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group, size = [first], len(first.digits)
            while size < MAX_GROUP:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:  # closing: finish this group, then stop
                    self._queue.put(None)
                    break
                group.append(job)
                size += len(job.digits)
            self._write(group)

    def _write(self, group: list[Job]) -> None:
        try:
            batch, ids = self._store(
                np.concatenate([j.digits for j in group]),
                [s for j in group for s in j.sources],
                [label for j in group for label in j.labels],
                [o for j in group for o in j.originals],
            )
        except BaseException as exc:  # every request of the group gets the error
            for job in group:
                job.future.set_exception(exc)
            return
        lo = 0
        for job in group:
            hi = lo + len(job.digits)
            part = Batch(batch.model, batch.probabilities[lo:hi], batch.seconds)
            job.future.set_result((part, ids[lo:hi]))
            lo = hi
