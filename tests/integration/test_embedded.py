"""The embedded PostgreSQL server shared by several processes in one DATA_DIR."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from service.db.embedded import EmbeddedPostgres


def test_last_user_stops_the_server(tmp_path: Path) -> None:
    """The server keeps running while any user remains, and stops with the last one."""
    first = EmbeddedPostgres(tmp_path)
    second = EmbeddedPostgres(tmp_path)
    url = first.start()
    assert second.start() == url
    try:
        first.stop()
        assert second.is_running()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        second.stop()
        first.stop()
    assert not first.is_running()


def test_restart_keeps_port_and_data(tmp_path: Path) -> None:
    """A second start reuses the cluster, its port and its password."""
    server = EmbeddedPostgres(tmp_path)
    url = server.start()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int)")
    server.stop()
    again = EmbeddedPostgres(tmp_path)
    assert again.start() == url
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT to_regclass('kept') IS NOT NULL").fetchone() == (True,)
    finally:
        again.stop()


def test_tcp_connections_need_the_password(tmp_path: Path) -> None:
    """Other users of the machine cannot connect without the generated password."""
    server = EmbeddedPostgres(tmp_path)
    server.start()
    try:
        assert (tmp_path / "postgres.password").stat().st_mode & 0o077 == 0
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(f"postgresql://postgres:wrong@127.0.0.1:{server.port}/ses_sender")
        assert "***" in server.display_url
        assert server.password not in server.display_url  # type: ignore[operator]
    finally:
        server.stop()
