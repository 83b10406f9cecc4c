"""docker-compose.yml and the Dockerfile, read as files: the test machines have no Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from service.cli import main as cli
from service.config import _SPECS

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = {"serve": "serve", "dispatch": "dispatch", "project": "project"}

# Variables the service reads besides the `_SPECS` table, and the AWS SDK's own.
OTHER_VARIABLES = {
    "DATABASE_URL",
    "DATA_DIR",
    "SNS_CERTS_DIR",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
}
KNOWN_VARIABLES = {spec.variable for spec in _SPECS} | OTHER_VARIABLES

# What the operations guide promises every process receives from the compose file.
DOCUMENTED_VARIABLES = {
    "DATABASE_URL",
    "API_KEY",
    "EMAIL_SENDER",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "SNS_TOPIC_ARNS",
    "SERVER_HOST",
    "SES_CONFIGURATION_SET",
    "EMAIL_RATE",
    "TRACKING_SECRET",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


def test_services_present(compose: dict[str, Any]) -> None:
    """PostgreSQL, the one-shot migration and the three processes are defined."""
    assert set(services(compose)) == {"postgres", "migrate", "serve", "dispatch", "project"}


def test_postgres_volume_and_health(compose: dict[str, Any]) -> None:
    """PostgreSQL keeps its data in a named volume and reports health with pg_isready."""
    postgres = services(compose)["postgres"]
    assert "pgdata:/var/lib/postgresql/data" in postgres["volumes"]
    assert "pgdata" in compose["volumes"]
    assert "pg_isready" in postgres["healthcheck"]["test"]


def test_migrate_runs_once_after_postgres(compose: dict[str, Any]) -> None:
    """Migrations run once PostgreSQL is healthy, and are never restarted."""
    migrate = services(compose)["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_process_waits_for_migrations(compose: dict[str, Any], name: str) -> None:
    """Each process runs its own command after the migrations succeeded."""
    service = services(compose)[name]
    assert service["command"] == [PROCESSES[name]]
    assert service["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert service["restart"] == "unless-stopped"


def test_api_health_check_uses_ready(compose: dict[str, Any]) -> None:
    """The API container is healthy only when /ready returns 200."""
    test = services(compose)["serve"]["healthcheck"]["test"]
    assert any("http://127.0.0.1:3000/ready" in part for part in test)


@pytest.mark.parametrize("name", ["migrate", *sorted(PROCESSES)])
def test_process_environment(compose: dict[str, Any], name: str) -> None:
    """Every process gets the documented settings, and only variables the service reads."""
    environment = services(compose)[name]["environment"]
    missing = DOCUMENTED_VARIABLES - set(environment)
    assert not missing, f"{name} lacks documented variables: {sorted(missing)}"
    unknown = set(environment) - KNOWN_VARIABLES
    assert not unknown, f"{name} sets variables the service does not read: {sorted(unknown)}"
    assert environment["DATABASE_URL"].startswith("postgresql://ses_sender:")
    assert environment["DATABASE_URL"].endswith("@postgres:5432/ses_sender")


@pytest.mark.parametrize("name", ["dispatch", "project"])
def test_workers_expose_metrics(compose: dict[str, Any], name: str) -> None:
    """Processes without the API get a metrics listener of their own."""
    assert services(compose)[name]["environment"]["METRICS_PORT"] == "9100"


def test_commands_exist(compose: dict[str, Any]) -> None:
    """Every command the compose file runs is a command of the CLI."""
    commands = {services(compose)[name]["command"][0] for name in ["migrate", *PROCESSES]}
    missing = commands - set(cli.commands)
    assert not missing, f"the CLI has no command {sorted(missing)}"


def test_dockerfile_runs_unprivileged() -> None:
    """The image is built on python:3.11-slim and runs the CLI as a non-root user."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert [line for line in lines if line.startswith("FROM ")] == ["FROM python:3.11-slim"]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users
    assert users[-1] not in ("root", "0")
    assert 'ENTRYPOINT ["ses-sender"]' in lines


def test_operations_guide_names_everything(compose: dict[str, Any]) -> None:
    """The operations guide mentions every compose service and every variable it sets."""
    guide = (ROOT / "docs" / "operations.md").read_text()
    for name in services(compose):
        assert f"`{name}`" in guide, f"docs/operations.md does not mention the {name} service"
    for name in ["migrate", *PROCESSES]:
        for variable in services(compose)[name]["environment"]:
            assert f"`{variable}`" in guide, f"docs/operations.md does not describe {variable}"


@pytest.mark.parametrize("document", ["README.md", "docs/operations.md"])
def test_every_setting_documented(document: str) -> None:
    """Each variable that the settings loader reads has a row in the document's settings table."""
    text = (ROOT / document).read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    names = [spec.variable for spec in _SPECS] + ["DATABASE_URL", "DATA_DIR", "SNS_CERTS_DIR"]
    for name in names:
        assert any(f"`{name}`" in row for row in rows), f"{document} has no row for {name}"
