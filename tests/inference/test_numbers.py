"""Reading whole numbers whose digits overlap (`digitlab.inference.numbers`), with the
`fast` model trained once per test run: the boxes of overlapping digits share columns,
so only cuts that bend around the strokes leave each digit whole."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitlab.data import Split
from digitlab.evaluation.numberpics import LAYOUTS, compose, png_bytes
from digitlab.inference.cuts import cut_paths
from digitlab.inference.numbers import (
    KEEP_SCORE,
    Candidates,
    Piece,
    candidates,
    groups,
    ink_of,
    odd_digit,
    read_number,
)
from digitlab.inference.predictor import Batch, Predictor
from digitlab.inference.preprocess import ImageError
from digitlab.registry.versions import ModelVersion

OVERLAPPING = next(layout for layout in LAYOUTS if layout.name == "overlapping")


def test_a_cut_bends_around_a_leaning_stroke() -> None:
    """Ink everywhere but a diagonal lane: the cut follows the lane, not a column."""
    cost = np.ones((12, 20), np.float32)
    for y in range(12):
        cost[y, 4 + y] = 0.0
    (path,) = cut_paths(cost, [9], band=8)
    assert path.tolist() == [4 + y for y in range(12)]


def test_overlapping_numbers_are_read_exactly(
    trained_fast_model: ModelVersion, mnist_test: Split
) -> None:
    predictor = Predictor(trained_fast_model.path.parent)
    # Three MNIST test digits each, laid out with their boxes overlapping by 2-4 pixels
    # (at scale 1); 446 was read as 46 when the digits were cut along columns.
    exact = 0
    for start in (0, 15, 33, 48, 51, 57):
        picks = range(start, start + 3)
        truth = "".join(str(int(mnist_test.labels[k])) for k in picks)
        picture = compose(
            [mnist_test.images[k] for k in picks], OVERLAPPING, np.random.default_rng(start)
        )
        reading = read_number(png_bytes(picture), predictor.predict)
        exact += reading.text == truth
        xs = [d.box[0] for d in reading.digits]
        assert xs == sorted(xs)
    # All six read exactly with the model trained here; one slip is allowed for a model
    # trained on another CPU, whose last bits differ.
    assert exact >= 5


def test_a_refused_piece_is_kept_only_when_tall_and_not_surely_none(
    trained_fast_model: ModelVersion,
) -> None:
    """Between digits, a full-height stroke the verdict refuses is still a digit unless the
    model is sure it is none; a low mark (a dash) is left out however it scores."""
    boxes = [(0, 0, 10, 30), (12, 0, 10, 30), (24, 10, 10, 8)]  # tall, tall, a dash
    found = Candidates(
        pieces=[Piece(k, 0, 1) for k in range(3)],
        images=[np.zeros((28, 28), np.uint8)] * 3,
        boxes=list(boxes),
        sizes=[30.0] * 3,
        line=30.0,
    )
    probs = np.full((3, 10), 0.1, np.float32)
    # Digit scores, all under the model's threshold: refused by the verdict.
    scores = np.array([KEEP_SCORE + 0.2, KEEP_SCORE - 0.05, 0.9], np.float32)
    batch = Batch(trained_fast_model, probs, 0.0, np.zeros(3, bool), scores)
    assert [odd_digit(found, batch, k) for k in range(3)] == [True, False, False]


def test_a_picture_of_too_many_strokes_is_refused_before_the_model_reads_it() -> None:
    """A wide wavy line would be cut into thousands of candidates: it is refused before
    any is cut out, normalised or sent to the model."""
    calls: list[int] = []

    def predict(digits: np.ndarray) -> Batch:
        calls.append(len(digits))
        raise AssertionError("the model was asked")

    picture = Image.new("L", (2048, 160), 0)
    xs = np.arange(0, 2048, 4)
    ImageDraw.Draw(picture).line(list(zip(xs, 80 + 60 * np.sin(xs / 9), strict=True)), 255, 6)
    ink, _ = ink_of(png_bytes(np.asarray(picture)))
    with pytest.raises(ImageError, match="too many strokes"):
        candidates(ink)
    with pytest.raises(ImageError, match="too many strokes"):
        read_number(png_bytes(np.asarray(picture)), predict)
    assert calls == []


def test_a_small_flat_digit_is_read_and_a_dash_is_not() -> None:
    """A 0 drawn wide and flat at half its neighbours' height is under half the tallest
    digit, as a dash is; by its width it is a digit, and only the dash is left out."""
    picture = Image.new("L", (260, 120), 0)
    draw = ImageDraw.Draw(picture)
    draw.line([(30, 20), (30, 100)], 255, 6)  # a 1, 80 pixels tall
    draw.ellipse([(60, 66), (110, 100)], outline=255, width=6)  # a flat 0, 34 tall, 50 wide
    draw.line([(140, 60), (170, 60)], 255, 6)  # a dash, as wide as a narrow digit
    draw.line([(200, 20), (200, 100)], 255, 6)  # a 1
    ink, _ = ink_of(png_bytes(np.asarray(picture)))
    found = candidates(ink)
    wholes = sorted(found.boxes[own[0]][0] for own in groups(found))  # each group's whole piece
    # Three groups are read: the 1, the flat 0 and the last 1; the dash is not.
    assert [x // 10 for x in wholes] == [2, 6, 19]
