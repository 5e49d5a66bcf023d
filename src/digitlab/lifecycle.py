"""Model lifecycle operations shared by the CLI and the service.

`activate_model` is the one way to change the serving model: `digitlab models use`
calls it, and so does the service's activate endpoint, so both leave the registry
pointer and the database's `models.is_active` flag in agreement.
"""

from __future__ import annotations

from pathlib import Path

from digitlab import registry
from digitlab.config import Settings


def database_configured(settings: Settings) -> bool:
    """Set explicitly, or the default embedded database already exists. Otherwise
    registry operations do not create a database as a side effect."""
    from digitlab.store.db import parse_url

    if "database_url" in settings.model_fields_set:
        return True
    database = parse_url(settings.database_url).database
    return database is not None and Path(database).is_file()


def activate_model(settings: Settings, version: str) -> registry.ModelVersion:
    """Make `version` the default: first the registry pointer (an atomic rename, what a
    running service watches), then the database flag when a database is configured."""
    model = registry.set_current(settings.model_dir, version)
    if database_configured(settings):
        from digitlab.scoring import ensure_model
        from digitlab.store.db import open_engine

        ensure_model(open_engine(settings.database_url), model, active=True)
    return model
