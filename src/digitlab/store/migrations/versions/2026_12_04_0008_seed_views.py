"""The reference project's tables as read-only views in a PostgreSQL schema `seed`, with
its column names, so that its documented queries run unchanged after
`SET search_path = seed, public` (docs/reference-compat.md). SQLite: nothing to do.

seed.input_data:  id, image (the upload as sent, else the 784 bytes the model saw),
                  true_label (the trusted label: the latest labeller's correction, else
                  the label the input was stored with), created_at, "timestamp", pixels,
                  source
seed.predictions: id, input_data_id, predicted_label, confidence, created_at,
                  "timestamp", model_version, probabilities

Each view joins another relation, so PostgreSQL does not make it auto-updatable: an
INSERT, UPDATE or DELETE through it fails, and the store stays written by digitlab only.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCHEMA = "seed"

INPUT_DATA = """
CREATE VIEW seed.input_data AS
SELECT i.id,
       COALESCE(i.original, i.image) AS image,
       COALESCE(trusted.label, i.label)::int AS true_label,
       i.created_at,
       i.created_at AS "timestamp",
       i.image AS pixels,
       i.source
FROM public.input_data AS i
LEFT JOIN LATERAL (
    SELECT f.label
    FROM public.feedback AS f
    JOIN public.predictions AS p ON p.id = f.prediction_id
    WHERE p.input_id = i.id AND f.source = 'labeller'
    ORDER BY f.id DESC
    LIMIT 1
) AS trusted ON true
"""

PREDICTIONS = """
CREATE VIEW seed.predictions AS
SELECT p.id,
       p.input_id AS input_data_id,
       p.label::int AS predicted_label,
       p.confidence,
       p.created_at,
       p.created_at AS "timestamp",
       m.version AS model_version,
       p.probabilities
FROM public.predictions AS p
JOIN public.models AS m ON m.id = p.model_id
"""

UPGRADE = (f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}", INPUT_DATA, PREDICTIONS)
DOWNGRADE = (
    f"DROP VIEW IF EXISTS {SCHEMA}.predictions",
    f"DROP VIEW IF EXISTS {SCHEMA}.input_data",
    f"DROP SCHEMA IF EXISTS {SCHEMA}",  # not CASCADE: anything else put there stays
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in DOWNGRADE:
        op.execute(statement)
