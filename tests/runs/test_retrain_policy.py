"""The promotion policy on its own: gains and drops in percentage points, limits included."""

from __future__ import annotations

import pytest

from digitlab.feedback.policy import HELDOUT, MNIST_TEST, Comparison, Policy, Score, decide


def comparison(mnist: tuple[float, float], held: tuple[float, float]) -> Comparison:
    return Comparison(
        "old",
        "new",
        {
            MNIST_TEST: {"old": Score(mnist[0], 10_000), "new": Score(mnist[1], 10_000)},
            HELDOUT: {"old": Score(held[0], 20), "new": Score(held[1], 20)},
        },
    )


@pytest.mark.parametrize(
    ("mnist", "held", "policy", "promote"),
    [
        ((0.9932, 0.9922), (0.0, 0.5), Policy(), True),  # a drop of exactly 0.10 points
        ((0.9932, 0.9921), (0.0, 0.5), Policy(), False),  # 0.11 points
        ((0.9932, 0.9940), (0.5, 0.5), Policy(), False),  # no gain on held-out
        ((0.9932, 0.9940), (0.5, 0.55), Policy(min_gain=5.0), False),  # 5 points needed
        ((0.9932, 0.9940), (0.5, 0.60), Policy(min_gain=5.0), True),
        ((0.9932, 0.9900), (0.0, 0.9), Policy(max_mnist_drop=0.5), True),
    ],
)
def test_decide(
    mnist: tuple[float, float], held: tuple[float, float], policy: Policy, promote: bool
) -> None:
    ok, reasons = decide(comparison(mnist, held), policy)
    assert ok is promote
    assert len(reasons) == 2 and reasons[0].startswith("held-out corrections (20 images)")
