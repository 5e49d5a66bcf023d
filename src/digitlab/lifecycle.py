"""Model lifecycle operations shared by the CLI and the service.

`activate_model` is the one way to change the serving model: `digitlab models use`,
`digitlab models promote` and the service's activate endpoint all call it, so they leave
the registry pointer, the database's `models.is_active` flag and the `promotions`
history in agreement.
"""

from __future__ import annotations

import getpass
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


def current_user() -> str:
    """Who is promoting, when nobody says: the operating-system user."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "unknown"


def activate_model(
    settings: Settings, version: str, *, by: str | None = None
) -> registry.ModelVersion:
    """Make `version` the default: first the registry pointer (an atomic rename, what a
    running service watches), then, in the database, the active flag and a promotion
    record (who: `by`, else the OS user; when: the database's clock).

    Without `by` the database is written only when one is configured; with `by` the
    promotion must be recorded, so the embedded database is created if need be."""
    registry.load_version(settings.model_dir, version)  # a bad version fails before any write
    engine = None
    if by is not None or database_configured(settings):
        from digitlab.store.db import open_engine

        engine = open_engine(settings.database_url)  # a wrong database fails before the switch
    model = registry.set_current(settings.model_dir, version)
    if engine is not None:
        from digitlab.scoring import ensure_model
        from digitlab.store import db, runs

        model_id = ensure_model(engine, model, active=True)
        with db.transaction(engine) as session:
            runs.record_promotion(session, model_id=model_id, promoted_by=by or current_user())
    return model
