"""Cut paths between digits that touch or overlap: a vertical cut takes a slice of the
neighbour's stroke into each piece, so each cut is instead the path from top to bottom
that crosses the least ink, bending (one column a row at most) around strokes that lean
over the gap. Pure numpy; all the paths of a group are found in one pass over its rows.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Path = npt.NDArray[np.int32]  # (H,): the first column right of the cut, per row

# A step sideways costs this much (in full-strength ink pixels crossed): between two
# paths through equally little ink, the straighter one.
SIDESTEP = 0.05
# Each column away from where a path started costs this much a row: a path drifts only
# to cross less ink, not along a blank stretch to a neighbour's gap.
DRIFT = 0.004


def cut_paths(cost: npt.NDArray[np.float32], starts: list[int], band: int) -> list[Path]:
    """For each start column, the path through the least `cost` that keeps within `band`
    columns of its start and inside the picture's inner columns; duplicates dropped,
    ordered left to right."""
    height, width = cost.shape
    if not starts or width < 3:
        return []
    offsets = np.arange(-band, band + 1)
    cols = np.asarray(starts)[:, None] + offsets[None, :]  # (K, B)
    inside = (cols >= 1) & (cols <= width - 1)
    cols = np.clip(cols, 0, width - 1)
    drift = DRIFT * np.abs(offsets)[None, :].astype(np.float32)
    step = np.where(inside, drift, np.inf).astype(np.float32)
    total = cost[0][cols] + step
    moves = np.zeros((height, *cols.shape), np.int8)
    for y in range(1, height):
        # From the left neighbour (move -1 looked back), straight on (0), the right (+1).
        from_left = np.full_like(total, np.inf)
        from_left[:, 1:] = total[:, :-1] + SIDESTEP
        from_right = np.full_like(total, np.inf)
        from_right[:, :-1] = total[:, 1:] + SIDESTEP
        options = np.stack([from_left, total, from_right])
        choice = options.argmin(axis=0)
        moves[y] = choice - 1
        total = np.take_along_axis(options, choice[None], axis=0)[0] + cost[y][cols] + step
    spot = total.argmin(axis=1)
    rows = np.arange(len(starts))
    paths = np.zeros((len(starts), height), np.int32)
    for y in range(height - 1, -1, -1):
        paths[:, y] = cols[rows, spot]
        spot = spot + moves[y, rows, spot]
    unique = np.unique(paths, axis=0)
    return sorted(unique, key=lambda p: float(p.mean()))


def between(left: Path, right: Path, width: int) -> npt.NDArray[np.bool_]:
    """The pixels right of one cut and left of the next, as a (H, width) mask."""
    xs = np.arange(width)[None, :]
    return (xs >= left[:, None]) & (xs < right[:, None])
