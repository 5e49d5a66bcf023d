"""Prometheus metrics and the ASGI middleware that records them. Each app gets its own
registry, so several apps (tests) can live in one process."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "digitlab_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "digitlab_http_request_duration_seconds",
            "Time from request to response, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "digitlab_predictions",
            "Predictions made, by predicted label",
            ["label"],
            registry=self.registry,
        )
        self.feedback = Counter(
            "digitlab_feedback",
            "Corrections stored, by source (labeller or anonymous)",
            ["source"],
            registry=self.registry,
        )
        self.feedback_limited = Counter(
            "digitlab_feedback_rate_limited",
            "Anonymous corrections refused with 429 (too many from one client address)",
            registry=self.registry,
        )
        self.model = Gauge(
            "digitlab_model_info",
            "The model version serving (value 1)",
            ["version"],
            registry=self.registry,
        )
        self._version: str | None = None

    def serving(self, version: str) -> None:
        if version != self._version:
            if self._version is not None:
                self.model.remove(self._version)
            self.model.labels(version).set(1)
            self._version = version

    def predicted(self, labels: list[int]) -> None:
        for label in labels:
            self.predictions.labels(str(label)).inc()


class MetricsMiddleware:
    """Counts and times every request by its route template (not its raw path, which
    would make a series per id)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
