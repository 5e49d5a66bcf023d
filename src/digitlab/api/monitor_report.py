"""What the monitor shows, assembled from the store's aggregates and the model cards:
for the serving version and the one before it, over a window (hour, day, week), the
requests, how many were answered as not a digit, the predicted-class mix against the
training mix, the confidence histogram against the test set's, the drift scores (PSI)
and the trusted live accuracy. The mix, the histogram and the drift are of the answers
that were digits: a run of doodles is reported as refused, not as drift.

`build(settings, session, window)` is shared by `GET /api/v1/monitor`, the /monitor page
and the drift gauge on /metrics.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from digitlab.config import Settings
from digitlab.evaluation import drift
from digitlab.registry import versions as registry
from digitlab.store import monitor as store
from digitlab.store import runs

Window = Literal["hour", "day", "week"]
WINDOWS: dict[str, timedelta] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}
# Fewer predictions than this in a window and a PSI says more about chance than drift.
MIN_FOR_DRIFT = 100


class Share(BaseModel):
    n: int = Field(description="Predictions with a trusted label")
    correct: int = Field(description="Of those, predicted as the labeller labelled them")
    accuracy: float | None = Field(description="correct / n; null when n is 0")
    low: float | None = Field(description="95% Wilson interval, lower end")
    high: float | None = Field(description="95% Wilson interval, upper end")


class ClassShare(Share):
    label: int


class Trusted(Share):
    per_class: list[ClassShare] = Field(description="By the labeller's label, 0..9")


class VersionMonitor(BaseModel):
    version: str
    role: Literal["serving", "previous"]
    requests: int = Field(description="Predictions made in the window")
    digits: int = Field(
        description="Of those, answered as a digit (or stored before the verdict existed):"
        " what the class mix, the confidence counts and the drift are of"
    )
    refused: int = Field(description="Of those, answered as not a digit (`is_digit` false)")
    judged: int = Field(
        description="Of those, with a verdict (not stored before the verdict existed)"
    )
    refused_share: float | None = Field(
        description="refused / the predictions with a verdict; null when none has one"
    )
    class_mix: list[float] = Field(description="Share of predictions per digit 0..9")
    training_mix: list[float] = Field(description="Share of each digit in the training labels")
    training_mix_source: str = Field(description="Where the training mix came from")
    confidence_counts: list[int] = Field(description="Predictions per confidence bin")
    reference_confidence: list[float] | None = Field(
        description="The test set's share per confidence bin; null for a model card without it"
    )
    psi_confidence: float | None = Field(description="PSI of confidence vs the test set")
    psi_class_mix: float | None = Field(description="PSI of the class mix vs the training mix")
    drift_score: float | None = Field(description="The larger PSI; null without predictions")
    drifting: bool = Field(description="drift_score above the threshold on enough predictions")
    enough_for_drift: bool = Field(description=f"At least {MIN_FOR_DRIFT} digit answers")
    trusted: Trusted


class MonitorOut(BaseModel):
    window: Window
    since: datetime = Field(description="The window's start (UTC); it ends now")
    drift_threshold: float
    confidence_edges: list[float] = Field(description="Inner edges of the confidence bins")
    waiting_for_review: int = Field(description="Stored inputs without a labeller's label")
    readings: int = Field(0, description="Whole numbers read in the window (POST /read)")
    corrected_readings: int = Field(0, description="Of those, how many were corrected")
    versions: list[VersionMonitor] = Field(description="The serving version, then the one before")


def monitored_versions(settings: Settings, session: Session) -> list[tuple[str, str]]:
    """(version, role): the serving one, then the one promoted before it (else the one
    registered before it), when there is one."""
    serving = registry.current_version(settings.model_dir)
    if serving is None:
        return []
    found = [(serving, "serving")]
    earlier = [p.version for p in runs.promotions(session, limit=50) if p.version != serving]
    if not earlier:
        names = [v.version for v in registry.list_versions(settings.model_dir)]
        if serving in names and names.index(serving) > 0:
            earlier = [names[names.index(serving) - 1]]
    if earlier:
        found.append((earlier[0], "previous"))
    return found


def _share(correct: int, n: int) -> dict[str, Any]:
    interval = drift.wilson(correct, n)
    return {
        "n": n,
        "correct": correct,
        "accuracy": correct / n if n else None,
        "low": interval[0] if interval else None,
        "high": interval[1] if interval else None,
    }


def _card(settings: Settings, version: str) -> dict[str, object]:
    try:
        return registry.load_version(settings.model_dir, version).card
    except registry.RegistryError:
        return {}  # a version known only from the promotions history: no references


def build(
    settings: Settings, session: Session, window: Window, *, now: datetime | None = None
) -> MonitorOut:
    since = (now or datetime.now(UTC)) - WINDOWS[window]
    versions = monitored_versions(settings, session)
    ids = store.model_ids(session, [v for v, _ in versions])
    found = store.read(session, model_ids=list(ids.values()), since=since)
    counts, trusted = found.counts, found.trusted
    out = []
    for version, role in versions:
        card = _card(settings, version)
        seen = counts.get(ids.get(version, -1)) or store.WindowCounts()
        labelled = trusted.get(ids.get(version, -1)) or store.TrustedCounts()
        mix, mix_source = drift.training_mix(card)
        reference = drift.reference_confidence(card)
        psi_conf = drift.psi(reference, seen.by_bin) if reference else None
        psi_mix = drift.psi(mix, seen.by_label)
        scores = [s for s in (psi_conf, psi_mix) if s is not None]
        score = max(scores) if scores else None
        enough = seen.digits >= MIN_FOR_DRIFT
        per_class = [
            {"label": k, **_share(labelled.correct[k], labelled.labelled[k])} for k in range(10)
        ]
        out.append(
            VersionMonitor(
                version=version,
                role=role,  # type: ignore[arg-type]
                requests=seen.requests,
                digits=seen.digits,
                refused=seen.refused,
                judged=seen.judged,
                refused_share=seen.refused_share,
                class_mix=drift.shares(seen.by_label),
                training_mix=mix,
                training_mix_source=mix_source,
                confidence_counts=seen.by_bin,
                reference_confidence=drift.shares(reference) if reference else None,
                psi_confidence=psi_conf,
                psi_class_mix=psi_mix,
                drift_score=score,
                drifting=enough and score is not None and score > drift.PSI_THRESHOLD,
                enough_for_drift=enough,
                trusted=Trusted(
                    **_share(sum(labelled.correct), sum(labelled.labelled)),
                    per_class=[ClassShare(**c) for c in per_class],
                ),
            )
        )
    return MonitorOut(
        window=window,
        since=since,
        drift_threshold=drift.PSI_THRESHOLD,
        confidence_edges=list(store.CONFIDENCE_EDGES),
        waiting_for_review=found.waiting,
        readings=found.readings,
        corrected_readings=found.corrected_readings,
        versions=out,
    )
