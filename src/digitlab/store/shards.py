"""The markers of finished scoring shards (`score_shards`): found before a shard is
scored, inserted first in the transaction that stores its rows."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from digitlab.store.models import ScoreShard


def find_shard(session: Session, *, job: str, shard: int, shards: int) -> ScoreShard | None:
    """The marker of shard `shard` of `shards` of `job`, if that shard was stored."""
    return session.scalars(
        select(ScoreShard).where(
            ScoreShard.job == job, ScoreShard.shard == shard, ScoreShard.shards == shards
        )
    ).one_or_none()


def record_shard(
    session: Session, *, job: str, shard: int, shards: int, model_id: int, images: int
) -> int:
    """Insert the marker now (flushed), so that a concurrent run of the same shard waits
    on the unique index until this transaction ends, then fails instead of storing the
    rows a second time."""
    row = ScoreShard(job=job, shard=shard, shards=shards, model_id=model_id, images=images)
    session.add(row)
    session.flush()
    return row.id
