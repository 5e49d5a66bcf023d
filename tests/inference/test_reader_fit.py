"""Fitting the number reader's piece weights (`digitlab.evaluation.readerfit`): the true
digits' places in a composed number, which candidate piece covers which digit, and that
the perceptron's weights cut the groups of touching digits better than where it starts."""

from __future__ import annotations

import itertools

import numpy as np

from digitlab.data import Split
from digitlab.evaluation import readerfit
from digitlab.evaluation.numberpics import LAYOUTS, compose_spans
from digitlab.inference import numbers
from digitlab.inference.predictor import Predictor
from digitlab.registry.versions import ModelVersion

SPACED, TOUCHING, OVERLAPPING = (
    next(layout for layout in LAYOUTS if layout.name == name)
    for name in ("spaced", "touching", "overlapping")
)


def test_spans_are_where_each_digit_has_its_ink(mnist_test: Split) -> None:
    picture, spans = compose_spans(list(mnist_test.images[:4]), SPACED, np.random.default_rng(3))
    inked = np.flatnonzero(picture.any(axis=0))
    assert len(spans) == 4
    assert spans[0][0] == inked[0] and spans[-1][1] == inked[-1] + 1
    for (_, right), (left, _) in itertools.pairwise(spans):
        assert right < left  # spaced: a gap between neighbours ...
        assert not picture[:, int(right) : int(left)].any()  # ... with no ink in it
    for left, right in spans:
        assert picture[:, int(left)].any() and picture[:, int(right) - 1].any()


def test_a_piece_covers_the_one_digit_it_mostly_holds() -> None:
    spans = [(0.0, 20.0), (16.0, 36.0)]  # two digits overlapping by 4 columns
    assert readerfit.covered((0, 0, 18, 30), 1.0, spans) == 0  # 90% of the first, 10%
    assert readerfit.covered((9, 0, 18, 30), 2.0, spans) == 1  # at twice the scale
    assert readerfit.covered((0, 0, 36, 30), 1.0, spans) == -1  # both digits
    assert readerfit.covered((0, 0, 10, 30), 1.0, spans) == -1  # half a digit


def test_each_spaced_digit_is_covered_by_its_own_piece(
    trained_fast_model: ModelVersion, mnist_test: Split
) -> None:
    """With the real reader: the pieces read as a spaced number cover its digits, one
    each, left to right. Not every time: a wide, flat MNIST digit (a 2 whose tail runs
    far right) may be read from a piece without its tail, the tail then dropped as no
    digit. 58 of 60 spaced numbers were covered digit by digit with `fast` and with
    `best` (57 at the earlier stroke threshold, 0.35)."""
    predictor = Predictor(trained_fast_model.path.parent)
    made = readerfit.make_numbers(
        mnist_test, 10, np.random.default_rng(1), predictor, None, (SPACED,)
    )
    covered = 0
    for number in made:
        assert number.batch is not None
        kept = numbers.choose(number.found, number.batch)
        covered += [number.covers[k] for k in kept] == list(range(len(number.truth)))
    assert covered >= 9


def piece(left: int, right: int) -> numbers.Piece:
    return numbers.Piece(0, left, right)


def test_the_perceptron_learns_what_the_start_gets_wrong() -> None:
    """Groups of two cuts (0-1-2): the whole piece or its two halves. Here the halves are
    the truth whenever they are tall, though the model is surer of the whole: starting
    from confidence alone every group is cut wrong; fitted, none is."""
    rng = np.random.default_rng(0)
    height = numbers.FEATURES.index("height")
    data = []
    for _ in range(40):
        pieces = [piece(0, 2), piece(0, 1), piece(1, 2)]
        feats = np.zeros((3, len(numbers.FEATURES)))
        feats[:, 0] = 1.0  # bias
        feats[:, 1] = np.array([-0.01, -0.5, -0.5]) + rng.normal(0, 0.05, 3)  # log-confidence
        split = bool(rng.integers(2))
        feats[:, height] = [1.0, 1.0, 1.0] if split else [1.0, 0.4, 0.4]
        data.append(readerfit.Example(pieces, feats, [1, 2] if split else [0]))
    start = readerfit.start()
    assert readerfit.cut_wrong(data, start) == sum(len(e.truth) == 2 for e in data) > 0
    assert readerfit.cut_wrong(data, readerfit.fit(data, epochs=20, seed=0)) == 0
