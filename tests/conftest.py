"""Shared fixtures: a real PostgreSQL server and a fresh, migrated database per test.

The server is TEST_DATABASE_URL when set (its user needs CREATEDB), otherwise an embedded one
started once per session in a temporary folder. A template database is migrated once; each
test gets its own copy, which PostgreSQL makes by copying files, in tens of milliseconds.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from service.config import Settings
from service.db.embedded import EmbeddedPostgres
from service.db.migrate import migrate
from service.db.pool import Pool, open_pool
from service.secret import Secret

TEST_API_KEY = "test-api-key-0123456789"


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL of the test server's maintenance database, for creating and dropping databases."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("embedded"))
    embedded.start()
    try:
        yield make_conninfo(embedded.url, dbname="postgres")
    finally:
        embedded.stop()


def database_conninfo(server_url: str, name: str) -> str:
    return make_conninfo(server_url, dbname=name)


def url_for(server_url: str, name: str) -> str:
    """A postgresql:// URL for database `name` on the test server."""
    params = conninfo_to_dict(server_url)
    user = params.get("user", "postgres")
    password = params.get("password")
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    credentials = f"{user}:{password}" if password else str(user)
    return f"postgresql://{credentials}@{host}:{port}/{name}"


def create_database(server_url: str, name: str, template: str | None = None) -> None:
    clause = f" TEMPLATE {template}" if template else ""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}{clause}")  # type: ignore[arg-type]


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def template_database(server_url: str) -> Iterator[str]:
    name = f"ses_sender_template_{os.getpid()}"
    drop_database(server_url, name)
    create_database(server_url, name)
    migrate(url_for(server_url, name))
    try:
        yield name
    finally:
        drop_database(server_url, name)


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    """A URL of a new database with no schema at all."""
    name = f"ses_sender_empty_{uuid.uuid4().hex[:12]}"
    create_database(server_url, name)
    try:
        yield url_for(server_url, name)
    finally:
        drop_database(server_url, name)


@pytest.fixture
def database_url(server_url: str, template_database: str) -> Iterator[str]:
    """A URL of a new database with every migration applied."""
    name = f"ses_sender_test_{uuid.uuid4().hex[:12]}"
    create_database(server_url, name, template=template_database)
    try:
        yield url_for(server_url, name)
    finally:
        drop_database(server_url, name)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Pool]:
    opened = await open_pool(database_url, name="test", min_size=1, max_size=8)
    try:
        yield opened
    finally:
        await opened.close()


def make_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": Secret(database_url),
        "data_dir": tmp_path,
        "sns_certs_dir": tmp_path / "sns-certs",
        "api_key": Secret(TEST_API_KEY),
        "email_sender": "sender@example.com",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)
