"""Numbered, checksummed, forward-only migrations; the server refuses a mismatched schema."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg
import pytest

from traceability.config import ROOT, Settings
from traceability.errors import SchemaError
from traceability.storage import migrator
from traceability.storage.database import open_database


@pytest.fixture
def schema_copy(tmp_path: Path) -> Path:
    target = tmp_path / "schema"
    shutil.copytree(ROOT / "schema", target)
    return target


async def test_migrate_twice_is_a_no_op(superuser: asyncpg.Connection) -> None:
    assert await migrator.migrate(superuser, ROOT / "schema") == []
    count = await superuser.fetchval("SELECT count(*) FROM schema_migrations")
    assert count == len(list((ROOT / "schema").glob("*.sql")))


async def test_an_edited_migration_is_refused(db_url: str, schema_copy: Path) -> None:
    first = sorted(schema_copy.glob("*.sql"))[0]  # noqa: ASYNC240 -- test setup before the loop has other work
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(SchemaError, match="edited after it was applied"):
        async with open_database(Settings.from_env({}, database_url=db_url, schema_dir=schema_copy)):
            pass


async def test_a_database_behind_the_code_is_refused(db_url: str, schema_copy: Path) -> None:
    count = len(list(schema_copy.glob("*.sql")))  # noqa: ASYNC240 -- test setup before the loop has other work
    (schema_copy / f"{count + 1:04d}_next.sql").write_text("SELECT 1;")
    with pytest.raises(SchemaError, match="run `traceability migrate`"):
        async with open_database(Settings.from_env({}, database_url=db_url, schema_dir=schema_copy)):
            pass
    async with open_database(Settings.from_env({}, database_url=db_url, schema_dir=schema_copy), migrate=True):
        pass


async def test_a_database_ahead_of_the_code_is_refused(db_url: str, schema_copy: Path) -> None:
    last = sorted(schema_copy.glob("*.sql"))[-1]  # noqa: ASYNC240 -- test setup before the loop has other work
    last.unlink()
    with pytest.raises(SchemaError, match="ahead of the code"):
        async with open_database(Settings.from_env({}, database_url=db_url, schema_dir=schema_copy)):
            pass


def test_misnamed_files_are_refused(schema_copy: Path) -> None:
    (schema_copy / "add_things.sql").write_text("SELECT 1;")
    with pytest.raises(SchemaError, match="NNNN_description"):
        migrator.load(schema_copy)
