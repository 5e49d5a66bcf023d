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

    # Where the four MNIST IDX files live (downloaded there when missing).
    data_dir: Path = _user_cache_dir() / "mnist"
    # Fashion-MNIST: Debian's dataset-fashion-mnist package installs it here.
    fashion_data_dir: Path = Path("/usr/share/datasets/fashion-mnist")
    # Writable fallback for Fashion-MNIST when the Debian package is not installed.
    fashion_download_dir: Path = _user_cache_dir() / "fashion-mnist"
    # Download mirrors (base URLs) tried in order; empty: the dataset's public mirrors.
    mirrors: list[str] = []
    # Versioned model folders, one per training run.
    model_dir: Path = Path("var/models")
    # Evaluation reports.
    report_dir: Path = Path("var/reports")
    # The prediction store: embedded SQLite by default, or
    # postgresql+psycopg://user:password@host:5432/dbname
    database_url: str = "sqlite:///var/digitlab.db"
    # The prediction service (`digitlab serve`).
    host: str = "127.0.0.1"
    port: int = 8000
    # Worker processes sharing the port; 1: the service runs in the `digitlab serve`
    # process itself.
    workers: int = 1
    # On SIGTERM (or Ctrl-C): how long requests in flight may take to finish before they
    # are cancelled and the process exits.
    shutdown_seconds: int = 20
    # Bearer token for the model-activation endpoint; unset: the endpoint is off.
    admin_token: str | None = None
    # Bearer token (or /login password) for reading stored inputs, predictions and
    # feedback: the History page and the API's reads. Unset or empty: reads are open.
    viewer_token: str | None = None
    # Bearer token (or /login password) of the people whose corrections are trusted:
    # the review queue and labelling. Unset or empty: nobody is a labeller. Read from
    # DIGITLAB_LABELLER_TOKEN or DIGITLAB_LABELER_TOKEN (the spelling).
    labeller_token: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DIGITLAB_LABELLER_TOKEN", "DIGITLAB_LABELER_TOKEN"),
    )
    # Anonymous corrections each client address may give per minute (a burst of as many,
    # then one every 60/N s); 0: anonymous feedback is off. Per worker process.
    anonymous_feedback_per_minute: int = Field(default=20, ge=0)
    # Largest request body the service reads; larger ones get 413.
    max_upload_bytes: int = 5 * 1024 * 1024
    # After a 413, how much of the rest of the body is still read and thrown away, and
    # for how long, before the connection closes: clients that read the answer only
    # after sending everything (urllib, requests) see the 413 instead of a reset.
    oversize_drain_bytes: int = 64 * 1024 * 1024
    oversize_drain_seconds: float = 10.0


def get_settings() -> Settings:
    return Settings()
