"""Starting and stopping the real `ses-sender` CLI as a subprocess, for acceptance tests.

Each service gets its own DATA_DIR (so its own embedded PostgreSQL and API key), a free port
on 127.0.0.1, and a working directory without a `.env` file, so nothing from the developer's
setup leaks in. Its output goes to `output.log` in its folder, which failures print.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.db.embedded import EmbeddedPostgres

STARTUP_TIMEOUT = 90.0
SHUTDOWN_TIMEOUT = 30.0

# Settings a developer may have exported that would change what the test starts.
_CLEARED_VARIABLES = (
    "API_KEY",
    "DATABASE_URL",
    "DB_HOST",
    "DB_PORT",
    "DB_USER",
    "DB_PASSWORD",
    "DB_NAME",
    "SERVER_HOST",
    "SES_ENDPOINT_URL",
    "EMAIL_SENDER",
    "SNS_TOPIC_ARNS",
    "SNS_CERTS_DIR",
    "SENTRY_DSN",
    "TRACKING_SECRET",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)


@contextmanager
def service_root() -> Iterator[Path]:
    """A new folder for one service, removed afterwards.

    It is made outside pytest's temporary folders on purpose. Each pytest session that starts
    on the machine removes the group and other permissions from those folders. The embedded
    PostgreSQL runs as its own system user when the tests run as root, so it would lose
    access to its data directory.
    """
    with tempfile.TemporaryDirectory(prefix="ses-sender-acceptance-") as folder:
        yield Path(folder)


def cli_command() -> list[str]:
    """The installed `ses-sender` script next to this Python, or the module as a fallback."""
    script = Path(sys.executable).parent / "ses-sender"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "service.cli"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_environment(root: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without service settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED_VARIABLES}
    env["AWS_CONFIG_FILE"] = str(root / "aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(root / "aws-credentials")
    # boto3's credential chain must never ask an instance metadata service from a test.
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["LOG_FORMAT"] = "json"
    env.update(extra or {})
    return env


@dataclass
class LocalService:
    """One running `ses-sender run --local` process."""

    process: subprocess.Popen[bytes]
    root: Path
    port: int
    data_dir: Path
    env: dict[str, str]
    """The environment the process was started with."""

    @property
    def log_path(self) -> Path:
        return self.root / "output.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        """The URL of the service's embedded PostgreSQL, for checking what it stored."""
        return EmbeddedPostgres(self.data_dir).url

    @property
    def api_key(self) -> str:
        return (self.data_dir / "api-key").read_text().strip()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, *, authenticated: bool = True) -> httpx.Client:
        headers = {"x-api-key": self.api_key} if authenticated else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=15)

    def stop(self) -> int:
        """Send SIGTERM and return the exit code once the process has ended."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"ses-sender did not stop within {SHUTDOWN_TIMEOUT} s of SIGTERM; "
                f"output:\n{self.output()}"
            ) from None


def start_local_service(
    root: Path, extra_env: Mapping[str, str] | None = None, *, default_data_dir: bool = False
) -> LocalService:
    """Start `ses-sender run --local` under `root` and return once /ready returns 200.

    With `default_data_dir`, DATA_DIR is left unset and HOME is `root/home`, so the service
    keeps its state where a new user's would be: `~/.local/share/ses-sender` on Linux.
    """
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    settings = {"SERVER_PORT": str(port)}
    if default_data_dir:
        home = root / "home"
        home.mkdir(exist_ok=True)
        settings["HOME"] = str(home)
        data_dir = home / ".local" / "share" / "ses-sender"
    else:
        data_dir = root / "data"
        settings["DATA_DIR"] = str(data_dir)
    env = clean_environment(root, {**settings, **(extra_env or {})})
    if default_data_dir:
        env.pop("DATA_DIR", None)
        env.pop("XDG_DATA_HOME", None)
    with open(root / "output.log", "wb") as log:
        process = subprocess.Popen(
            [*cli_command(), "run", "--local"],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = LocalService(process, root, port, data_dir, env)
    try:
        _wait_until_ready(service)
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait()
        raise
    return service


def _wait_until_ready(service: LocalService) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        code = service.process.poll()
        if code is not None:
            raise AssertionError(
                f"ses-sender exited with {code} before it was ready; output:\n{service.output()}"
            )
        try:
            response = httpx.get(f"{service.base_url}/ready", timeout=2)
        except httpx.TransportError as error:
            last_error = repr(error)
        else:
            if response.status_code == 200:
                return
            last_error = f"{response.status_code} {response.text}"
        time.sleep(0.2)
    raise AssertionError(
        f"ses-sender was not ready within {STARTUP_TIMEOUT} s (last: {last_error}); "
        f"output:\n{service.output()}"
    )
