"""Metrics arithmetic on hand-made cases."""

from __future__ import annotations

import numpy as np

from digitlab.evaluation.report import confusion_matrix


def test_confusion_matrix_counts_rows_as_truth() -> None:
    true = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 2, 0])
    cm = confusion_matrix(true, pred, k=3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
