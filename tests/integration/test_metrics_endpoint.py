"""GET /metrics and the per-route count of HTTP requests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import AsyncTestClient

from service.api.app import create_app
from service.api.context import AppContext
from service.api.errors import ApiError
from service.config import Settings
from service.db.pool import Pool
from service.metrics import REGISTRY, SENDS

REQUESTS_TOTAL = "ses_sender_http_requests_total"


@get("/v1/probe/{item_id:str}", sync_to_thread=False)
def probe(item_id: FromPath[str]) -> dict[str, str]:
    return {"item": item_id}


@get("/v1/conflict", sync_to_thread=False)
def conflict() -> None:
    raise ApiError(409, "Always in conflict.")


@pytest.fixture
async def client(settings: Settings, pool: Pool) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = create_app(AppContext(settings, pool))
    app.register(probe)
    app.register(conflict)
    async with AsyncTestClient(app) as test_client:
        yield test_client


def requests_counted(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(REQUESTS_TOTAL, {"route": route, "status": status})
    return value or 0.0


def series_exists(route: str, status: str) -> bool:
    labels = {"route": route, "status": status}
    return REGISTRY.get_sample_value(REQUESTS_TOTAL, labels) is not None


async def test_metrics_served_without_key(client: AsyncTestClient[Litestar]) -> None:
    """/metrics responds without an API key, in the Prometheus text format."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE ses_sender_sends_total counter" in response.text
    assert "# TYPE ses_sender_due_queue_depth gauge" in response.text


async def test_metrics_openmetrics_on_request(client: AsyncTestClient[Litestar]) -> None:
    """A scraper that requests OpenMetrics gets that format."""
    accept = "application/openmetrics-text; version=1.0.0"
    response = await client.get("/metrics", headers={"accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


async def test_metrics_show_recorded_values(client: AsyncTestClient[Litestar]) -> None:
    """A value recorded into the registry appears in the next scrape."""
    SENDS.labels(outcome="sent").inc(0)
    before = REGISTRY.get_sample_value("ses_sender_sends_total", {"outcome": "sent"})
    assert before is not None
    SENDS.labels(outcome="sent").inc(3)
    response = await client.get("/metrics")
    assert f'ses_sender_sends_total{{outcome="sent"}} {before + 3}' in response.text


async def test_metrics_not_in_openapi(client: AsyncTestClient[Litestar]) -> None:
    """The scrape endpoint is left out of the OpenAPI document, like an internal probe."""
    document = (await client.get("/schema/openapi.json")).json()
    assert "/metrics" not in document["paths"]


async def test_requests_counted_by_template(client: AsyncTestClient[Litestar]) -> None:
    """Requests to a route with a path parameter share one label: the route template."""
    before = requests_counted("/v1/probe/{item_id}", "2xx")
    for item in ("a", "b", "c"):
        response = await client.get(f"/v1/probe/{item}")
        assert response.status_code == 200
    assert requests_counted("/v1/probe/{item_id}", "2xx") == before + 3
    assert not series_exists("/v1/probe/a", "2xx")


async def test_unmatched_paths_share_label(client: AsyncTestClient[Litestar]) -> None:
    """Paths that match no route are counted as 'unmatched' with their status class."""
    before = requests_counted("unmatched", "4xx")
    for path in ("/nothing", "/v1/random/1", "/v1/random/2"):
        response = await client.get(path)
        assert response.status_code == 404
    assert requests_counted("unmatched", "4xx") == before + 3
    assert not series_exists("/nothing", "4xx")


async def test_status_class_of_errors(client: AsyncTestClient[Litestar]) -> None:
    """Error responses made by the exception handlers count under their route and class."""
    before = requests_counted("/v1/conflict", "4xx")
    response = await client.get("/v1/conflict")
    assert response.status_code == 409
    assert requests_counted("/v1/conflict", "4xx") == before + 1


async def test_wrong_method_is_unmatched(client: AsyncTestClient[Litestar]) -> None:
    """The router rejects a method the path does not allow, so it counts as unmatched."""
    before = requests_counted("unmatched", "4xx")
    response = await client.post("/health")
    assert response.status_code == 405
    assert requests_counted("unmatched", "4xx") == before + 1
