"""Dependencies of the routes, as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from digitlab.api.service import Service
from digitlab.config import Settings
from digitlab.store import db

API_PREFIX = "/api/v1"


# async: a plain `def` dependency would cost every request a hop to the thread pool.
async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_settings(service: ServiceDep) -> Settings:
    return service.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(service: ServiceDep) -> Iterator[Session]:
    """A read transaction; database errors become a 503 through the error handlers."""
    with db.transaction(service.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
