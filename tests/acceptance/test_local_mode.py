"""`ses-sender run --local` as a user starts it: over HTTP on 127.0.0.1, then stopped by SIGTERM."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.service import LocalService, start_local_service

pytestmark = pytest.mark.acceptance

HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def secured_operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, path) of every operation that declares the API key requirement."""
    operations = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS and {"apiKey": []} in operation.get("security", []):
                operations.append((method.upper(), path))
    return operations


def concrete_path(path: str) -> str:
    """Fill each path parameter with a well-formed UUID, so routing and guards are reached."""
    while "{" in path:
        start = path.index("{")
        end = path.index("}", start)
        path = path[:start] + "00000000-0000-4000-8000-000000000000" + path[end + 1 :]
    return path


def test_health_and_ready(local_service: LocalService) -> None:
    """Both probes return 200 without a key once the service is up."""
    with local_service.client(authenticated=False) as client:
        health = client.get("/health")
        ready = client.get("/ready")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"
    assert ready.json()["schema_version"] == ready.json()["expected_schema_version"]


def test_startup_output(local_service: LocalService) -> None:
    """The startup output states that no email leaves the machine, with the key and base URL."""
    output = local_service.output()
    assert "no email leaves this machine" in output
    assert f"API key:  {local_service.api_key}" in output
    assert f"http://localhost:{local_service.port}" in output
    assert "SES:      emulator at http://127.0.0.1:" in output


def test_api_key_file_private(local_service: LocalService) -> None:
    """The generated key is kept in DATA_DIR/api-key, readable by its owner only."""
    mode = stat.S_IMODE((local_service.data_dir / "api-key").stat().st_mode)
    assert mode == 0o600
    assert len(local_service.api_key) >= 32


def test_protected_endpoints_need_key(local_service: LocalService) -> None:
    """Every operation that declares the API key returns 401 without it or with a wrong one."""
    with local_service.client(authenticated=False) as client:
        document = client.get("/schema/openapi.json").json()
        operations = secured_operations(document)
        assert operations, "no operation in the OpenAPI document declares the apiKey requirement"
        for method, path in operations:
            url = concrete_path(path)
            missing = client.request(method, url)
            wrong = client.request(method, url, headers={"x-api-key": "wrong-key"})
            assert missing.status_code == 401, f"{method} {path} without a key"
            assert missing.json()["field"] == "x-api-key"
            assert wrong.status_code == 401, f"{method} {path} with a wrong key"


def test_schema_served(local_service: LocalService) -> None:
    """The OpenAPI document and its interactive page are served under /schema."""
    with local_service.client(authenticated=False) as client:
        document = client.get("/schema/openapi.json")
        page = client.get("/schema")
    assert document.status_code == 200
    assert document.json()["info"]["title"] == "ses-sender"
    assert "/ready" in document.json()["paths"]
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")


def test_metrics_served(local_service: LocalService) -> None:
    """/metrics responds without a key and counts the requests made so far."""
    with local_service.client(authenticated=False) as client:
        client.get("/health")
        response = client.get("/metrics")
    assert response.status_code == 200
    assert 'ses_sender_http_requests_total{route="/health",status="2xx"}' in response.text
    assert "ses_sender_due_queue_depth" in response.text


def test_clean_shutdown_and_restart(scratch_root: Path) -> None:
    """SIGTERM stops every part with exit 0, and a restart on the same DATA_DIR keeps the key."""
    first = start_local_service(scratch_root)
    key = first.api_key
    assert first.stop() == 0, first.output()
    output = first.output()
    assert "service_stopped" in output
    assert "embedded_postgres_stopped" in output
    assert "ses_emulator_stopped" in output
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{first.base_url}/health", timeout=2)

    second = start_local_service(scratch_root)
    try:
        assert second.api_key == key
        with second.client() as client:
            assert client.get("/ready").status_code == 200
    finally:
        assert second.stop() == 0, second.output()
