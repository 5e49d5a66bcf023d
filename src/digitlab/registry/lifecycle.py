"""Model lifecycle operations shared by the CLI and the service.

`activate_model` is the one way to change the serving model: `digitlab models use`,
`digitlab models promote` and the service's activate endpoint all call it, so they leave
the registry pointer, the database's `models.is_active` flag and the `promotions`
history in agreement.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING

from digitlab.config import Settings
from digitlab.registry import versions as registry

if TYPE_CHECKING:
    from sqlalchemy import Engine


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


def registry_engine(settings: Settings) -> Engine | None:
    """The database engine when the database keeps the model registry (PostgreSQL),
    else None (the model folder is the registry)."""
    from digitlab.store.db import open_engine, parse_url

    if not database_configured(settings):
        return None
    if parse_url(settings.database_url).get_backend_name() != "postgresql":
        return None
    return open_engine(settings.database_url)


def sync_models(settings: Settings) -> None:
    """With the registry in the database, bring its versions into the model folder (a
    cache) and point CURRENT at the active one; nothing to do otherwise."""
    engine = registry_engine(settings)
    if engine is not None:
        from digitlab.registry.database import sync

        sync(engine, settings.model_dir)


def serving_version(settings: Settings) -> str | None:
    """The version that is, or will be, served: the database's active one when the
    database keeps the registry, else the model folder's CURRENT."""
    engine = registry_engine(settings)
    if engine is None:
        return registry.current_version(settings.model_dir)
    from digitlab.store.artifacts import active

    found = active(engine)
    return found.version if found else None


def activate_model(
    settings: Settings, version: str, *, by: str | None = None
) -> registry.ModelVersion:
    """Make `version` the default, and record it in the database: the active flag and a
    promotion (who: `by`, else the OS user; when: the database's clock).

    With the embedded setup the registry pointer moves first (an atomic rename, what a
    running service watches); without `by` the database is written only when one is
    configured; with `by` the promotion must be recorded, so the embedded database is
    created if need be. With PostgreSQL the database is the registry: the version (from
    the model folder, or else from the database) is published there and activated, which
    every serving process hears of, and then the local pointer follows."""
    db_registry = registry_engine(settings)
    if db_registry is not None:
        from digitlab.registry.database import fetch_into

        model = fetch_into(db_registry, settings.model_dir, version)
        with registry.pointer_lock(settings.model_dir):  # see pointer_lock
            _record_activation(db_registry, model, by)
            registry.set_current(settings.model_dir, version)
        return model
    registry.load_version(settings.model_dir, version)  # a bad version fails before any write
    engine = None
    if by is not None or database_configured(settings):
        from digitlab.store.db import open_engine

        engine = open_engine(settings.database_url)  # a wrong database fails before the switch
    model = registry.set_current(settings.model_dir, version)
    if engine is not None:
        _record_activation(engine, model, by)
    return model


def _record_activation(engine: Engine, model: registry.ModelVersion, by: str | None) -> None:
    from digitlab.registry.publish import ensure_model
    from digitlab.store import db, runs

    model_id = ensure_model(engine, model, active=True)
    with db.transaction(engine) as session:
        runs.record_promotion(session, model_id=model_id, promoted_by=by or current_user())
