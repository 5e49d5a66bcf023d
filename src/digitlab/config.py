"""Typed settings, read from the environment (prefix DIGITLAB_) and `.env`.

Built by `get_settings()`, never at import time, so tests can build their own.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "digitlab"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DIGITLAB_",
        env_file=".env",
        extra="ignore",
        protected_namespaces=(),
        populate_by_name=True,  # Settings(labeller_token=...) beside its env aliases
    )

    # Each field's description is the settings reference in the docs (generated from
    # these fields by docs/gen/reference.py), so say there what a user needs to know.
    data_dir: Path = Field(
        default=_user_cache_dir() / "mnist",
        description="Where the four MNIST IDX files live (gzipped or raw); downloaded there "
        "when missing.",
    )
    fashion_data_dir: Path = Field(
        default=Path("/usr/share/datasets/fashion-mnist"),
        description="Fashion-MNIST: where Debian's dataset-fashion-mnist package installs it.",
    )
    fashion_download_dir: Path = Field(
        default=_user_cache_dir() / "fashion-mnist",
        description="Writable fallback: where Fashion-MNIST is downloaded when the Debian "
        "package is not installed.",
    )
    mirrors: list[str] = Field(
        default=[],
        description="Download mirrors (a JSON list of base URLs) tried in order; every file "
        "is still checked against its SHA-256. Empty: the dataset's public mirrors.",
    )
    model_dir: Path = Field(
        default=Path("var/models"),
        description="Versioned model folders, one per training run; only a cache when the "
        "registry is in PostgreSQL.",
    )
    report_dir: Path = Field(default=Path("var/reports"), description="Evaluation reports.")
    negatives_dir: Path = Field(
        default=_user_cache_dir() / "negatives",
        description="Where the not-digit pictures training makes (digitlab.ml.negatives) are "
        "kept between runs; safe to delete.",
    )
    verdict_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Overrides the model card's `verdict.threshold`: a picture is a digit "
        "when its digit score (1 - p(none), or the maximum softmax for a ten-output model) "
        "is at least this. Unset (default): the card's, calibrated to accept 99.7% of "
        "MNIST validation digits; 0.5 for a model without one.",
    )
    database_url: str = Field(
        default="sqlite:///var/digitlab.db",
        description="The prediction store: embedded SQLite by default, or "
        "postgresql+psycopg://user:password@host:5432/dbname.",
    )
    host: str = Field(default="127.0.0.1", description="Where `digitlab serve` listens.")
    port: int = Field(default=8000, description="The port `digitlab serve` listens on.")
    workers: int = Field(
        default=1,
        description="Worker processes sharing the port (`digitlab serve --workers N`); 1: the "
        "service runs in the `digitlab serve` process itself.",
    )
    shutdown_seconds: int = Field(
        default=20,
        description="On SIGTERM (or Ctrl-C): how long requests in flight may take to finish "
        "before they are cancelled and the process exits.",
    )
    admin_token: str | None = Field(
        default=None,
        description="Bearer token for the model-activation endpoint; unset: the endpoint is off.",
    )
    viewer_token: str | None = Field(
        default=None,
        description="Bearer token (or /login password) for reading stored inputs, predictions "
        "and feedback: the History page and the API's reads. Unset or empty: reads are open "
        "to anyone who reaches the service.",
    )
    labeller_token: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DIGITLAB_LABELLER_TOKEN", "DIGITLAB_LABELER_TOKEN"),
        description="Bearer token (or /login password) of the people whose corrections are "
        "trusted: the review queue and labelling. Unset or empty: nobody is a labeller. Read "
        "from DIGITLAB_LABELLER_TOKEN or DIGITLAB_LABELER_TOKEN.",
    )
    anonymous_feedback_per_minute: int = Field(
        default=20,
        ge=0,
        description="Anonymous corrections each client address may give per minute (a burst "
        "of as many, then one every 60/N s); 0: anonymous feedback is off. Per worker process.",
    )
    forwarded_allow_ips: str = Field(
        default="",
        description="The proxy whose X-Forwarded-For / X-Forwarded-Proto are believed: "
        "comma-separated addresses or networks (the Compose nginx's address, the ingress "
        "controller's pods). Empty: no proxy is trusted, the connection's own address is "
        "the client's. Never `*` where clients can reach the service directly: each could "
        "then name its own address and reset its rate limits.",
    )
    wrong_tokens_per_minute: int = Field(
        default=10,
        ge=1,
        description="Wrong tokens (a bearer token, or one typed on /login) each client "
        "address may send per minute (a burst of as many, then one every 60/N s) before "
        "every credential it sends is answered 429 with Retry-After. Per worker process.",
    )
    anonymous_predictions_per_minute: int = Field(
        default=0,
        ge=0,
        description="Predictions each client address may ask for per minute without the "
        "labeller or admin token (a burst of as many, then one every 60/N s); past it, 429 "
        "with Retry-After. 0: no limit, the default for `digitlab run` and `serve`; the "
        "Compose and Kubernetes deployments set it. Per worker process.",
    )
    max_upload_bytes: int = Field(
        default=5 * 1024 * 1024,
        description="Largest request body the service reads (5 MB); larger ones get 413.",
    )
    body_read_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How long a client may take to send a request's whole body (15 s: a 5 MB "
        "upload at 350 KB/s); a slower one gets 408 and its connection is closed, so that "
        "bodies trickled in a few bytes at a time do not hold connections open.",
    )
    # Clients that read the answer only after sending everything (urllib, requests) see
    # the 413 instead of a reset thanks to the drain.
    oversize_drain_bytes: int = Field(
        default=64 * 1024 * 1024,
        description="After a 413, how much of the rest of the body (64 MB) is still read and "
        "thrown away before the connection closes, so that clients which read the answer only "
        "after sending everything see the 413 instead of a reset.",
    )
    oversize_drain_seconds: float = Field(
        default=10.0,
        description="After a 413, for how long at most the rest of the body is read and "
        "thrown away before the connection closes.",
    )
    # The upgrade (digitlab upgrade): serve the quick first model at once, then train the
    # robust recipe in the background and switch to it through the promotion policy.
    upgrade: bool = Field(
        default=True,
        description="Whether `digitlab run` trains the robust model (`upgrade_recipe`) in "
        "the background after the first one serves, and switches to it when the promotion "
        "policy holds; `digitlab run --no-upgrade` turns it off for one run.",
    )
    upgrade_recipe: str = Field(
        default="best",
        description="The recipe the upgrade trains (`best`: the robust model, ~7 min on 2 "
        "cores); a quick one (`plain`) for tests.",
    )
    upgrade_epochs: int | None = Field(
        default=None,
        ge=1,
        description="Override the upgrade recipe's epochs (unset: the recipe's own).",
    )
    upgrade_status_file: Path = Field(
        default=Path("var/upgrade.json"),
        description="Where the upgrade's trainer writes its progress (epoch, time left, "
        "outcome), read by `digitlab run` and the Models page.",
    )


def get_settings() -> Settings:
    return Settings()
