"""The monitor's arithmetic: PSI, Wilson intervals, the card's reference distributions
and their fallbacks for older cards."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.evaluation import drift
from digitlab.store.monitor import BINS, CONFIDENCE_EDGES, confidence_bin


def test_psi_is_zero_for_the_same_mix_and_large_for_a_shifted_one() -> None:
    mix = [100] * 10
    assert drift.psi(mix, [3 * c for c in mix]) == pytest.approx(0.0)
    skewed = [500, 50, 50, 50, 50, 50, 50, 50, 50, 50]
    assert drift.psi(mix, skewed) > drift.PSI_THRESHOLD
    assert drift.psi(mix, [0] * 10) is None
    # A bin empty on one side is floored, not infinite.
    assert np.isfinite(drift.psi([1, 0], [0, 1]) or np.inf)


def test_wilson_interval_matches_the_textbook_values() -> None:
    low, high = drift.wilson(8, 10) or (0, 0)
    assert (round(low, 3), round(high, 3)) == (0.49, 0.943)
    low, high = drift.wilson(0, 5) or (1, 1)
    assert low == 0.0 and 0.4 < high < 0.45  # not the normal approximation's [0, 0]
    assert drift.wilson(0, 0) is None


def test_the_histogram_bins_agree_with_the_sql_bins() -> None:
    values = [0.0, 0.1, 0.5, 0.69, 0.7, 0.95, 0.9949, 0.995, 0.999, 1.0, *CONFIDENCE_EDGES]
    probs = np.zeros((len(values), 10))
    probs[:, 0] = values
    expected = np.bincount([confidence_bin(v) for v in values], minlength=BINS)
    assert drift.confidence_histogram(probs) == expected.tolist()
    assert confidence_bin(0.999) == BINS - 1 and confidence_bin(0.4999) == 0


def test_confidence_reference_from_logits() -> None:
    logits = np.array([[10.0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0.0] * 10])
    ref = drift.confidence_reference(logits)
    assert ref["test_confidence_edges"] == list(CONFIDENCE_EDGES)
    hist = ref["test_confidence_hist"]
    assert sum(hist) == 2 and hist[0] == 1 and hist[BINS - 1] == 1  # 0.1 and 0.99959


def test_reference_fallbacks_for_older_cards() -> None:
    assert drift.training_mix({"dataset": {"class_counts": [1] * 9 + [11]}})[0][-1] == 0.55
    confusion = [[0] * 10 for _ in range(10)]
    confusion[3][3] = 4
    mix, source = drift.training_mix({"metrics": {"test_confusion": confusion}})
    assert mix[3] == 1.0 and source == "test-set labels"
    assert drift.training_mix({})[0] == [0.1] * 10
    assert drift.reference_confidence({}) is None
    # Counted with other bins: not comparable, so not used.
    old = {"metrics": {"test_confidence_hist": [1] * BINS, "test_confidence_edges": [0.5]}}
    assert drift.reference_confidence(old) is None
