"""Migrations on a real database: empty start, re-runs, concurrent runs, bad files."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from service.db.migrate import discover, migrate, pending
from service.errors import MigrationError


def applied(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return [(v, n) for v, n in conn.execute("SELECT version, name FROM schema_migrations")]


def test_empty_database_gets_every_migration(empty_database_url: str) -> None:
    """On an empty database every file is applied once, in order."""
    done = migrate(empty_database_url)
    expected = [(m.version, m.name) for m in discover()]
    assert [(m.version, m.name) for m in done] == expected
    assert sorted(applied(empty_database_url)) == expected
    assert pending(empty_database_url) == []


def test_second_run_is_a_no_op(empty_database_url: str) -> None:
    """Running again applies nothing."""
    migrate(empty_database_url)
    assert migrate(empty_database_url) == []


def test_two_runs_at_once_apply_each_file_once(empty_database_url: str) -> None:
    """Concurrent runs wait for each other; the schema is applied once."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: migrate(empty_database_url), range(2)))
    total = sorted(m.version for run in results for m in run)
    assert total == [m.version for m in discover()]


def test_two_cli_processes_at_once(empty_database_url: str, tmp_path: Path) -> None:
    """`ses-sender migrate` twice in parallel against one database succeeds."""
    env = {"DATABASE_URL": empty_database_url, "DATA_DIR": str(tmp_path), "PATH": "/usr/bin"}
    command = [sys.executable, "-m", "service.cli", "migrate"]
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr.decode()
    assert len(applied(empty_database_url)) == len(discover())


def test_failed_migration_rolls_back_and_names_file(
    empty_database_url: str, tmp_path: Path
) -> None:
    """A broken file leaves nothing of itself behind, and earlier files stay applied."""
    (tmp_path / "001_good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE half (id int); SELEC 1;")
    with pytest.raises(MigrationError, match=r"002_bad\.sql failed"):
        migrate(empty_database_url, tmp_path)
    with psycopg.connect(empty_database_url) as conn:
        tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables")}
    assert "good" in tables
    assert "half" not in tables
    assert applied(empty_database_url) == [(1, "good")]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["1_x.sql"], "file name '1_x.sql' is invalid"),
        (["001_Upper.sql"], "file name '001_Upper.sql' is invalid"),
        (["001_a.sql", "0001_b.sql"], "share version 1"),
    ],
)
def test_bad_file_names(tmp_path: Path, names: list[str], message: str) -> None:
    """Stray or duplicate numbers are rejected before anything runs."""
    for name in names:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=message):
        discover(tmp_path)
