"""Sweeps: a grid or a list of training configs, trained one after another, each one a
recorded run.

    digitlab sweep sweeps/example.toml

The file (TOML):

    name = "optimizers"     # optional; default: the file's name without .toml
    recipe = "fast"         # the base recipe; a run may name another with recipe = "..."
    [base]                  # optional: overrides for every run
    epochs = 1
    [grid]                  # every combination of these lists, in file order
    batch_size = [64, 128]
    hidden = [0, 128]
    [[runs]]                # a list of runs, for settings that go together
    optimizer = "adam"
    lr = 0.001
    [[runs]]
    optimizer = "sgd"

Give [grid], [[runs]] or both; with both, every run is tried at every grid point
(the example is 2 runs x 4 grid points = 8 runs, runs first).

Every override is a field of `digitlab.ml.recipes.TrainConfig` (no torch is loaded
to check them). A first Ctrl-C lets the current run finish and then stops; a second
one stops at once and the run is recorded as interrupted.
"""

from __future__ import annotations

import dataclasses
import itertools
import signal
import threading
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from digitlab.data import DATASETS
from digitlab.ml.recipes import RECIPES, TrainConfig

# The values the training code accepts for its string fields (ml/train.py, ml/model.py;
# a test keeps these in step), so that a typo fails before the first run, not during it.
CHOICES: dict[str, tuple[str, ...]] = {
    "arch": ("fast", "best", "reference"),
    "optimizer": ("sgd", "adam", "adamw"),
    "schedule": ("onecycle", "constant"),
    "dataset": tuple(DATASETS),
}
# Fields that must be positive / may be zero; the rest of the numbers are free.
POSITIVE = ("epochs", "batch_size", "members", "width")
NON_NEGATIVE = ("hidden", "lr", "momentum", "weight_decay", "warmup", "label_smoothing",
                "max_shift", "max_rotate", "max_scale", "max_shear", "elastic", "stroke",
                "lowres", "blur", "contrast", "noise", "ema", "val_size", "seed")  # fmt: skip
TOP_LEVEL = ("name", "recipe", "base", "grid", "runs")
FIELD_TYPES = {f.name: str(f.type) for f in dataclasses.fields(TrainConfig)}


class SweepError(ValueError):
    """The sweep file is unreadable or asks for something TrainConfig does not have."""


@dataclass(frozen=True)
class Sweep:
    name: str
    configs: list[TrainConfig]


def load_sweep(path: Path) -> Sweep:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SweepError(f"cannot read the sweep file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SweepError(f"{path}: not valid TOML ({exc})") from None
    return parse_sweep(data, default_name=path.stem, where=str(path))


def parse_sweep(data: dict[str, Any], *, default_name: str, where: str = "sweep") -> Sweep:
    """The configs a sweep file describes, each checked against TrainConfig."""
    unknown = sorted(set(data) - set(TOP_LEVEL))
    if unknown:
        raise SweepError(
            f"{where}: unknown key {unknown[0]!r}; a sweep file has {', '.join(TOP_LEVEL)} "
            "(TrainConfig fields go under [base], [grid] or [[runs]])"
        )
    if "grid" not in data and "runs" not in data:
        raise SweepError(f"{where}: give a [grid] table, a list of [[runs]], or both")
    base = _table(data.get("base", {}), f"{where} [base]")
    grid = _table(data.get("grid", {}), f"{where} [grid]")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"{where} [grid]: {key} must be a non-empty list of values")
    points = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    listed = data.get("runs", [{}])
    if not isinstance(listed, list) or not listed:
        raise SweepError(f"{where}: [[runs]] must be a non-empty list of tables")
    runs = [_table(r, f"{where} [[runs]] #{i + 1}") for i, r in enumerate(listed)]
    recipe = data.get("recipe", "fast")
    configs = [
        make_config({"recipe": recipe} | base | run | point, f"{where} run {n + 1}")
        for n, (run, point) in enumerate(itertools.product(runs, points))
    ]
    return Sweep(name=str(data.get("name", default_name)), configs=configs)


def make_config(overrides: dict[str, Any], where: str) -> TrainConfig:
    """The recipe named by overrides["recipe"], with the other overrides checked and applied."""
    changes = dict(overrides)
    recipe = changes.pop("recipe")
    if recipe not in RECIPES:
        raise SweepError(f"{where}: unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    for key, value in changes.items():
        check_field(key, value, where)
    return RECIPES[recipe].replace(**changes)


def check_field(key: str, value: Any, where: str) -> None:
    if key not in FIELD_TYPES:
        raise SweepError(
            f"{where}: unknown setting {key!r}; TrainConfig has {', '.join(sorted(FIELD_TYPES))}"
        )
    expected = FIELD_TYPES[key].replace(" | None", "")  # TOML has no null: the value is set
    # bool is an int in Python; a `true` where a number belongs is a mistake all the same.
    ok = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
    }.get(expected, False)
    if not ok:
        raise SweepError(f"{where}: {key} must be {expected}, not {value!r}")
    if key in CHOICES and value not in CHOICES[key]:
        raise SweepError(f"{where}: {key} {value!r} is not one of {', '.join(CHOICES[key])}")
    if (key in POSITIVE and value <= 0) or (key in NON_NEGATIVE and value < 0):
        raise SweepError(f"{where}: {key} must be {'> 0' if key in POSITIVE else '>= 0'}")


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SweepError(f"{where}: expected a table of settings, got {value!r}")
    return value


@dataclass(frozen=True)
class Outcome:
    config: TrainConfig
    status: str  # succeeded, failed, interrupted
    error: str | None = None


def run_sweep(
    configs: list[TrainConfig],
    train_one: Callable[[TrainConfig], object],
    *,
    stop_requested: Callable[[], bool] = lambda: False,
    fatal: tuple[type[Exception], ...] = (),
) -> list[Outcome]:
    """Train each config in turn. A failed run is recorded and the sweep goes on (one bad
    grid point should not cost the others); an exception of a `fatal` type (the database
    went away) stops it. Ctrl-C (KeyboardInterrupt) stops after recording the run cut
    short; `stop_requested` is checked between runs."""
    outcomes: list[Outcome] = []
    for cfg in configs:
        if stop_requested():
            break
        try:
            train_one(cfg)
        except KeyboardInterrupt:
            outcomes.append(Outcome(cfg, "interrupted"))
            break
        except fatal:
            raise
        except Exception as exc:
            outcomes.append(Outcome(cfg, "failed", f"{type(exc).__name__}: {exc}"))
            continue
        outcomes.append(Outcome(cfg, "succeeded"))
    return outcomes


@contextmanager
def stop_after_current(on_first: Callable[[], None]) -> Iterator[Callable[[], bool]]:
    """While active, the first SIGINT (Ctrl-C) only sets a flag (and calls `on_first`);
    the second raises KeyboardInterrupt as usual. Yields the flag's reader."""
    requested = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal requested
        if requested:
            raise KeyboardInterrupt
        requested = True
        on_first()

    if threading.current_thread() is not threading.main_thread():
        yield lambda: requested  # signals reach only the main thread; nothing to install
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: requested
    finally:
        signal.signal(signal.SIGINT, previous)
