"""The group writer: requests queued together go through one call, each gets its own
slice back in order, a failed call fails every request of its group, and closing waits
for what was submitted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from digitlab.api.batcher import GroupWriter, Ids
from digitlab.inference.predictor import Batch
from digitlab.registry import versions as registry

MODEL = registry.ModelVersion("v", Path(), {})


def digit(k: int) -> np.ndarray:
    return np.full((1, 28, 28), k, np.uint8)


def submit(writer: GroupWriter, k: int) -> asyncio.Task[tuple[Batch, Ids]]:
    coro = writer.submit(digit(k), sources=["s"], labels=[None], originals=[None])
    return asyncio.ensure_future(coro)


def test_queued_requests_share_one_call_and_get_their_own_rows() -> None:
    calls: list[int] = []

    async def main() -> None:
        gate, entered = asyncio.Event(), asyncio.Event()

        async def store(digits, sources, labels, originals):  # type: ignore[no-untyped-def]
            entered.set()
            await gate.wait()  # hold the first call so that the others queue up behind it
            calls.append(len(digits))
            probs = np.zeros((len(digits), 10), np.float32)
            probs[np.arange(len(digits)), [int(d[0, 0]) for d in digits]] = 1
            return Batch(MODEL, probs, 0.001, probs.max(axis=1) >= 0.5), [
                (k, 100 + k) for k in range(len(digits))
            ]

        writer = GroupWriter(store)
        first = submit(writer, 0)
        await asyncio.wait_for(entered.wait(), 5)
        rest = [submit(writer, k) for k in range(1, 6)]
        await asyncio.sleep(0.01)
        gate.set()
        assert (await first)[1] == [(0, 100)]
        for k, task in enumerate(rest):
            batch, ids = await task
            assert batch.labels == [k + 1] and ids == [(k, 100 + k)]

    asyncio.run(main())
    assert calls == [1, 5]


def test_a_failed_call_fails_its_whole_group() -> None:
    async def main() -> None:
        down = True

        async def store(digits, sources, labels, originals):  # type: ignore[no-untyped-def]
            if down:
                raise RuntimeError("database gone")
            return Batch(
                MODEL, np.zeros((len(digits), 10), np.float32), 0.0, np.ones(len(digits), bool)
            ), [(7, 8)]

        writer = GroupWriter(store)
        tasks = [submit(writer, k) for k in range(3)]
        for task in tasks:
            with pytest.raises(RuntimeError, match="database gone"):
                await task
        down = False  # the database is back: the writer goes on with the next request
        assert (await submit(writer, 0))[1] == [(7, 8)]

    asyncio.run(main())


def test_close_waits_for_the_submitted_groups() -> None:
    written: list[int] = []

    async def main() -> None:
        async def store(digits, sources, labels, originals):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.05)
            written.append(len(digits))
            return Batch(
                MODEL, np.zeros((len(digits), 10), np.float32), 0.0, np.ones(len(digits), bool)
            ), [(1, 1)] * len(digits)

        writer = GroupWriter(store)
        tasks = [submit(writer, k) for k in range(4)]
        await asyncio.sleep(0)  # the requests are in; the first group is being written
        await writer.close()
        assert sum(written) == 4 and all(t.done() for t in tasks)

    asyncio.run(main())
