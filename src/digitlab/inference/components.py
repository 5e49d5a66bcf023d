"""The strokes of a picture of a number: connected components of its binarized ink,
specks dropped, and the parts of one digit (a 5 whose top is apart, a 4 in two strokes)
merged into one group. Pure numpy: no scipy on the serving path."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

# A component whose longer side is under this fraction of the tallest one's is a speck.
SPECK = 0.15
# Two components overlapping horizontally by this fraction of the narrower one's width
# are parts of one digit.
MERGE_OVERLAP = 0.55
# A stroke lower than this fraction of the line's height is part of a digit, or no digit.
FRAGMENT = 0.5
# A short stroke over no group still joins the nearest one when it is at most this far
# (of that group's height) beside it and lies in its top part: the bar of a 5 written apart
# from its body, two pixels to the right of it in an MNIST digit. A dash or a dot lies
# at the middle or the bottom of the line, and stays apart.
BESIDE, TOP = 0.2, 0.35


def label_components(mask: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.int32], int]:
    """8-connected components of a mask, labelled 1..n (0 background), from its row runs
    joined with a union-find: no scipy on the serving path."""
    parent: list[int] = [0]

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    labels = np.zeros(mask.shape, np.int32)
    previous: list[tuple[int, int, int]] = []  # (start, end, label) of the row above
    for y in range(mask.shape[0]):
        row = np.concatenate([[False], mask[y], [False]]).astype(np.int8)
        edges = np.flatnonzero(np.diff(row))
        runs = []
        for start, end in zip(edges[0::2], edges[1::2], strict=True):
            label = len(parent)
            parent.append(label)
            for p_start, p_end, p_label in previous:
                if p_start <= end and start <= p_end:  # touching, diagonals included
                    a, b = find(label), find(p_label)
                    parent[max(a, b)] = min(a, b)
            runs.append((int(start), int(end), label))
            labels[y, start:end] = label
        previous = runs
    roots = np.array([find(k) for k in range(len(parent))], np.int32)
    _, compact = np.unique(roots, return_inverse=True)
    return compact.astype(np.int32)[labels], int(compact.max())


Boxes = tuple[npt.NDArray[np.int64], ...]  # left, right, top, bottom (exclusive) per label


def label_boxes(labels: npt.NDArray[np.int32], count: int) -> Boxes:
    """Each label's box (index 0 unused), in one pass over the ink, not one per label:
    noise has thousands of them."""
    ys, xs = np.nonzero(labels)
    own = labels[ys, xs]
    left, top = np.full(count + 1, labels.shape[1]), np.full(count + 1, labels.shape[0])
    right, bottom = np.full(count + 1, -1), np.full(count + 1, -1)
    np.minimum.at(left, own, xs)
    np.minimum.at(top, own, ys)
    np.maximum.at(right, own, xs)
    np.maximum.at(bottom, own, ys)
    return left, right + 1, top, bottom + 1


def groups_of(labels: npt.NDArray[np.int32], count: int) -> tuple[npt.NDArray[np.int32], int]:
    """The components, specks dropped and the parts of one digit merged: a label image of
    the groups, numbered 1..n left to right (0: background and specks), and n. One image,
    not a mask per group: noise makes hundreds of groups."""
    if count == 0:
        return np.zeros_like(labels), 0
    left, right, top, bottom = label_boxes(labels, count)
    boxes = [
        (int(left[k]), int(right[k]), int(top[k]), int(bottom[k]), k) for k in range(1, count + 1)
    ]
    tallest = max(b[3] - b[2] for b in boxes)
    kept = [b for b in boxes if max(b[1] - b[0], b[3] - b[2]) >= SPECK * tallest]
    line = float(np.median([b[3] - b[2] for b in kept]))
    # Tallest first: a digit's body takes in the strokes lying over it.
    kept.sort(key=lambda b: b[2] - b[3])
    merged: list[list[int]] = []
    spans: list[tuple[int, int, int, int]] = []  # left, right, top, bottom of each group
    for x0, x1, y0, y1, k in kept:
        short = y1 - y0 < FRAGMENT * line
        # A short stroke (the bar of a 5, a dot of a broken line) joins the group it
        # overlaps most, however little; a tall one only a group it mostly lies within.
        need = 0.2 if short else MERGE_OVERLAP
        best, spot = 0.0, -1
        for g, (g0, g1, _, _) in enumerate(spans):
            overlap = (min(x1, g1) - max(x0, g0)) / min(x1 - x0, g1 - g0)
            if overlap >= need and overlap > best:
                best, spot = overlap, g
        if spot < 0 and short:
            spot = top_bar_of(spans, (x0, x1, y0, y1))
        if spot < 0:
            merged.append([k])
            spans.append((x0, x1, y0, y1))
        else:
            merged[spot].append(k)
            g0, g1, h0, h1 = spans[spot]
            spans[spot] = (min(x0, g0), max(x1, g1), min(y0, h0), max(y1, h1))
    order = sorted(range(len(merged)), key=lambda g: spans[g][0])
    group = np.zeros(count + 1, np.int32)  # component -> its group's place + 1 (0: none)
    for place, g in enumerate(order, 1):
        group[merged[g]] = place
    return group[labels], len(order)


def top_bar_of(spans: list[tuple[int, int, int, int]], stroke: tuple[int, int, int, int]) -> int:
    """The group whose top a short stroke beside it belongs to (-1: none): the nearest
    within BESIDE of its height, the stroke's middle in its top TOP."""
    x0, x1, y0, y1 = stroke
    best, spot = math.inf, -1
    for g, (g0, g1, h0, h1) in enumerate(spans):
        gap = max(g0 - x1, x0 - g1)
        near = 0 <= gap <= BESIDE * (h1 - h0)
        if near and gap < best and (y0 + y1) / 2 <= h0 + TOP * (h1 - h0):
            best, spot = gap, g
    return spot
