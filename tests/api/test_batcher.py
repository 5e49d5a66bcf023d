"""The group writer: requests queued together go through one call, each gets its own
slice back in order, and a failed call fails every request of its group."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from digitlab import registry
from digitlab.api.batcher import GroupWriter
from digitlab.predictor import Batch

MODEL = registry.ModelVersion("v", Path(), {})


def test_queued_requests_share_one_call_and_get_their_own_rows() -> None:
    calls: list[int] = []
    gate, entered = threading.Event(), threading.Event()

    def store(digits, sources, labels, originals):  # type: ignore[no-untyped-def]
        entered.set()
        gate.wait(5)  # hold the first call so that the others queue up behind it
        calls.append(len(digits))
        probs = np.zeros((len(digits), 10), np.float32)
        probs[np.arange(len(digits)), [int(d[0, 0]) for d in digits]] = 1
        return Batch(MODEL, probs, 0.001), [(k, 100 + k) for k in range(len(digits))]

    writer = GroupWriter(store)
    digit = [np.full((1, 28, 28), k, np.uint8) for k in range(6)]
    first = writer.submit(digit[0], sources=["s"], labels=[None], originals=[None])
    assert entered.wait(5)
    rest = [
        writer.submit(digit[k], sources=["s"], labels=[None], originals=[None]) for k in range(1, 6)
    ]
    gate.set()
    assert first.result(5)[1] == [(0, 100)]
    for k, future in enumerate(rest):
        batch, ids = future.result(5)
        assert batch.labels == [k + 1] and ids == [(k, 100 + k)]
    writer.close()
    assert calls == [1, 5]


def test_a_failed_call_fails_its_whole_group() -> None:
    def store(digits, sources, labels, originals):  # type: ignore[no-untyped-def]
        raise RuntimeError("database gone")

    writer = GroupWriter(store)
    futures = [
        writer.submit(np.zeros((1, 28, 28), np.uint8), sources=["s"], labels=[None],
                      originals=[None])
        for _ in range(3)
    ]  # fmt: skip
    for future in futures:
        with pytest.raises(RuntimeError, match="database gone"):
            future.result(5)
    writer.close()
