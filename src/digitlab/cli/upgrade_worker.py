"""The upgrade itself (`digitlab upgrade`): train the robust recipe as a recorded run,
judge it beside the serving model with the promotion policy of `digitlab retrain`, and
promote it only when the policy holds. Progress goes to the status file all along.

The judging sets are those of the retrain: the MNIST test set, and the held-out part of
people's corrections when there are any (on a fresh start there are none, and only the
MNIST rule applies). The first model keeps serving on every other outcome."""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from digitlab.config import Settings
from digitlab.feedback.policy import HELDOUT, MNIST_TEST, Comparison, Policy, measure
from digitlab.registry import versions as registry
from digitlab.registry.lifecycle import activate_model, serving_version, sync_models
from digitlab.registry.upgrade_status import HEARTBEAT_SECONDS, UpgradeStatus, write_status

PROMOTED_BY = "upgrade"  # who the promotion names in the history


class Cancelled(BaseException):
    """SIGTERM or Ctrl-C reached the trainer (BaseException: no `except Exception` in the
    training code may swallow it)."""


def upgrade_needed(settings: Settings, recipe: str) -> str | None:
    """None when the upgrade should run; else why not, in a sentence."""
    sync_models(settings)
    serving = serving_version(settings)
    if serving is None:
        return "no model serves yet; train one first (`digitlab run` or `digitlab train`)"
    card = registry.load_version(settings.model_dir, serving).card
    if card["dataset"]["name"] != "mnist":
        return f"{serving} is not an MNIST model; the upgrade trains MNIST recipes"
    for v in registry.list_versions(settings.model_dir):
        if v.card.get("recipe") != recipe or v.card.get("config", {}).get("dry_run"):
            continue
        if v.version == serving:
            return f"{serving} is a `{recipe}` model already"
        # Trained before and not serving: refused by the policy, or switched away from
        # on purpose. Training it again at every start would not change that.
        return (
            f"a `{recipe}` model was trained already ({v.version}); "
            f"`digitlab models use {v.version}` serves it, `digitlab upgrade --force` "
            "trains another"
        )
    return None


class Tracker:
    """Keeps the status in memory, and a thread writes it to the file every heartbeat:
    the training loop's callbacks only update numbers."""

    def __init__(self, path: Path, status: UpgradeStatus) -> None:
        self.path = path
        self.status = status
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="upgrade-status", daemon=True)

    def start(self) -> None:
        self.write()
        self._thread.start()

    def update(self, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(self.status, key, value)

    def write(self) -> None:
        with self._lock:
            write_status(self.path, self.status)

    def finish(self, state: str, reason: str, **changes: Any) -> UpgradeStatus:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.update(state=state, reason=reason, seconds_left=None, **changes)
        self.write()
        return self.status

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self.write()


def steps_per_epoch(cfg: Any) -> int:
    if cfg.dry_run:
        return 1
    steps: int = math.ceil((60_000 - cfg.val_size) / cfg.batch_size)
    return steps


def run_upgrade(
    settings: Settings, *, recipe: str, epochs: int | None = None, dry_run: bool = False
) -> UpgradeStatus:
    """Train `recipe`, judge it, promote it when the policy holds; returns the final
    status (also in the status file). Raises Cancelled on SIGTERM or Ctrl-C, after
    writing a `cancelled` status."""
    from digitlab.cli.training import run_training  # a recorded run, as `digitlab train`
    from digitlab.ml.recipes import get_recipe

    cfg = get_recipe(recipe).replace(dry_run=dry_run)
    if epochs is not None:
        cfg = cfg.replace(epochs=epochs)
    sync_models(settings)
    serving = serving_version(settings)
    total_epochs = 1 if cfg.dry_run else cfg.epochs * cfg.members
    per_epoch = steps_per_epoch(cfg)
    tracker = Tracker(
        settings.upgrade_status_file,
        UpgradeStatus(
            state="training", recipe=recipe, serving=serving, epoch=1, epochs=total_epochs
        ),
    )
    tracker.status.pid = os.getpid()
    steps = 0
    began: float | None = None

    def on_step(n: int) -> None:
        nonlocal steps, began
        if began is None:
            began = time.monotonic()  # data loading and start-up are not training time
        steps += 1
        fraction = min(1.0, steps / (per_epoch * total_epochs))
        elapsed = time.monotonic() - began
        tracker.update(
            epoch=min(total_epochs, steps // per_epoch + 1),
            fraction=fraction,
            seconds_left=elapsed / fraction * (1 - fraction) if fraction > 0.01 else None,
        )

    previous = signal.signal(signal.SIGTERM, _cancel)
    tracker.start()
    try:
        candidate = run_training(cfg, settings, activate=False, also_on_step=on_step)
        tracker.update(state="evaluating", candidate=candidate.version, fraction=1.0)
        promote, reasons, serving = judge(settings, candidate)
        if promote:
            activate_model(settings, candidate.version, by=PROMOTED_BY)
            return tracker.finish(
                "promoted",
                f"{candidate.version} (`{recipe}`) serves now: " + "; ".join(reasons),
                serving=candidate.version,
            )
        return tracker.finish(
            "kept",
            f"{candidate.version} (`{recipe}`) was not promoted: "
            + "; ".join(reasons)
            + f". {serving} keeps serving",
            serving=serving,
        )
    except (Cancelled, KeyboardInterrupt):
        tracker.finish(
            "cancelled", f"the upgrade to `{recipe}` was cancelled; {serving} keeps serving"
        )
        raise
    except Exception as exc:
        tracker.finish(
            "failed", f"the upgrade to `{recipe}` failed ({exc}); {serving} keeps serving"
        )
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def judge(settings: Settings, candidate: registry.ModelVersion) -> tuple[bool, list[str], str]:
    """The retrain's policy: not worse on MNIST test by more than its allowance, and, when
    people's corrections are held out, better on them. Returns (promote, the reasons,
    the version judged against: the one serving now, which may have changed meanwhile)."""
    from digitlab.data import load_split
    from digitlab.data.corrections import load_part
    from digitlab.feedback.export import export
    from digitlab.feedback.policy import decide
    from digitlab.store.db import open_engine

    sync_models(settings)
    serving = serving_version(settings)
    if serving is None:  # nothing serves any more: the candidate is all there is
        return True, ["no other model serves"], candidate.version
    current = registry.load_version(settings.model_dir, serving)
    engine = open_engine(settings.database_url)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    exported = export(engine, settings.report_dir / f"upgrade-{stamp}" / "corrections")
    sets = {MNIST_TEST: load_split("mnist", "test", settings)}
    if exported.counts["heldout"]:
        sets[HELDOUT] = load_part(exported.path, "heldout")
    comparison = Comparison(serving, candidate.version, measure([current, candidate], sets))
    policy = Policy()
    if HELDOUT in sets:
        ok, reasons = decide(comparison, policy)
    else:
        drop = round(-comparison.points(MNIST_TEST), 6)
        ok = drop <= policy.max_mnist_drop
        reasons = [
            f"MNIST test: {-drop:+.2f} points against {serving} (a drop of at most "
            f"{policy.max_mnist_drop:.2f} allowed{'' if ok else ': exceeded'}); no held-out "
            "corrections yet"
        ]
    from digitlab.cli.retrain import record  # the retrain's record: no corrections used

    record(engine, comparison, candidate, used=[])
    return ok, reasons, serving


def _cancel(signum: int, frame: FrameType | None) -> None:
    raise Cancelled()
