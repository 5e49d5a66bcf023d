"""Migrations up and down on both backends, in step with the models, and the schema
check: SQLite upgrades itself, PostgreSQL names the command to run."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from typer.testing import CliRunner

from digitlab.cli.main import app
from digitlab.config import Settings
from digitlab.store import db, migrate
from digitlab.store.models import Base
from digitlab.store.testing_pg import PostgresServer

TABLES = {
    "models", "input_data", "predictions", "feedback", "runs", "run_metrics", "promotions",
    "training_feedback", "model_evaluations",
}  # fmt: skip
runner = CliRunner()


def test_upgrade_down_to_base_and_up_again(db_url: str) -> None:
    engine = db.make_engine(db_url)
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert set(inspect(engine).get_table_names()) >= TABLES

    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    assert not TABLES & set(inspect(engine).get_table_names())

    migrate.upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES


def test_constraints_and_indexes_follow_the_naming_convention(engine: Engine) -> None:
    schema = inspect(engine)
    checks = {c["name"] for c in schema.get_check_constraints("input_data")}
    assert {"ck_input_data_label_range", "ck_input_data_image_size"} <= checks
    fks = {fk["name"]: fk for fk in schema.get_foreign_keys("predictions")}
    assert fks["fk_predictions_input_id_input_data"]["options"]["ondelete"] == "CASCADE"
    assert "fk_predictions_model_id_models" in fks
    indexes = {ix["name"] for ix in schema.get_indexes("predictions")}
    assert {"ix_predictions_input_id", "ix_predictions_model_id"} <= indexes
    assert "uq_models_version" in {u["name"] for u in schema.get_unique_constraints("models")}


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_sqlite_is_brought_up_to_date_on_first_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh/digitlab.db"
    engine = db.open_engine(url)
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_postgres_schema_behind_names_the_command(pg_server: PostgresServer) -> None:
    url = pg_server.create_database("behind")
    with pytest.raises(db.StoreError, match=r"no digitlab schema yet; run `digitlab db upgrade`"):
        db.open_engine(url)
    engine = db.make_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(db.StoreError, match="newer than this digitlab knows"):
        db.open_engine(url)


def test_db_commands(store_env: Settings) -> None:
    result = runner.invoke(app, ["db", "current"])
    assert result.exit_code == 0, result.output
    assert "revision none" in result.output and "run `digitlab db upgrade`" in result.output

    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"empty -> {migrate.head_revision()}" in result.output

    result = runner.invoke(app, ["db", "current"])
    assert "up to date" in result.output

    result = runner.invoke(app, ["db", "downgrade", "base"])
    assert result.exit_code == 0, result.output
    assert "-> empty" in result.output
    assert not TABLES & set(inspect(db.make_engine(store_env.database_url)).get_table_names())


def test_a_command_on_an_unmigrated_postgres_says_what_to_run(
    store_env: Settings, db_url: str
) -> None:
    result = runner.invoke(app, ["predictions"])
    if db_url.startswith("sqlite"):
        assert result.exit_code == 0, result.output  # upgraded by itself
        assert "no predictions" in result.output
    else:
        assert result.exit_code == 1
        assert result.output.startswith("error:") and "digitlab db upgrade" in result.output
        assert len(result.output.strip().splitlines()) == 1
