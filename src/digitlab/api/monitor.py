"""How the served model does on live traffic: `GET /api/v1/monitor?window=hour|day|week`
(behind the viewer token), and the drift score as a Prometheus gauge on /metrics.

The gauge `digitlab_drift_psi{version, role, signal}` covers the last hour; it is
computed when /metrics is scraped, at most every `GAUGE_SECONDS`, and a version with
fewer than `MIN_FOR_DRIFT` predictions in that hour has no series (a PSI of a handful
of predictions is noise, and an alert on it would be too).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from digitlab.api.auth import ViewerDep
from digitlab.api.deps import API_PREFIX, ServiceDep, SessionDep
from digitlab.api.monitor_report import MIN_FOR_DRIFT, MonitorOut, Window, build
from digitlab.api.responses import GUARDED
from digitlab.api.service import Service
from digitlab.store import db

log = logging.getLogger("digitlab.api")
router = APIRouter(prefix=API_PREFIX, tags=["monitor"])
GAUGE_SECONDS = 30.0


@router.get("/monitor", response_model=MonitorOut, responses=GUARDED)
def monitor(
    _viewer: ViewerDep,  # first: checked before a transaction is opened
    service: ServiceDep,
    session: SessionDep,
    window: Annotated[Window, Query(description="The last hour, day or week")] = "day",
) -> MonitorOut:
    """Requests, class mix, confidence, drift (PSI) and trusted accuracy of the serving
    version and the one before it, over a window; and the inputs waiting for review."""
    return build(service.settings, session, window)


class DriftCollector(Collector):
    """The last hour's PSI per monitored version, recomputed at most every
    GAUGE_SECONDS; nothing while the database is down."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._at = -GAUGE_SECONDS
        self._values: list[tuple[str, str, str, float]] = []

    def _refresh(self) -> None:
        values: list[tuple[str, str, str, float]] = []
        try:
            with db.transaction(self.service.engine) as session:
                report = build(self.service.settings, session, "hour")
        except db.StoreError as exc:
            log.warning("drift gauge not updated: %s", exc)
            report = None
        for v in report.versions if report else []:
            if v.digits < MIN_FOR_DRIFT:
                continue
            signals = {"score": v.drift_score, "confidence": v.psi_confidence}
            signals["class_mix"] = v.psi_class_mix
            for signal, value in signals.items():
                if value is not None:
                    values.append((v.version, v.role, signal, value))
        self._values = values
        self._at = time.monotonic()

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "digitlab_drift_psi",
            "PSI of the last hour's predictions against the model's references"
            " (signal: confidence vs the test set, class_mix vs the training labels,"
            " score: the larger); above 0.2 the inputs have shifted",
            labels=["version", "role", "signal"],
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Without it, registering would call collect() and query the database at startup.
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if time.monotonic() - self._at >= GAUGE_SECONDS:
                self._refresh()
            values = list(self._values)
        gauge = self._family()
        for version, role, signal, value in values:
            gauge.add_metric([version, role, signal], value)
        yield gauge


def install_gauge(service: Service) -> None:
    service.metrics.registry.register(DriftCollector(service))
