"""The Prometheus scrape endpoint and the count of HTTP requests served."""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.types import Message, Scope
from prometheus_client.exposition import choose_encoder

from service.metrics import HTTP_REQUESTS, REGISTRY

# Requests that no route handler served (an unknown path, or a method the path does not allow)
# are counted under this label, so that scans of random paths cannot create a series per path.
UNMATCHED_ROUTE = "unmatched"


@get(
    "/metrics",
    summary="Prometheus metrics of this process",
    include_in_schema=False,
    sync_to_thread=False,
)
def metrics(request: Request[object, object, State]) -> Response[bytes]:
    # The text format by default, OpenMetrics when the scraper's Accept header requests it.
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    # Set as a header so that Litestar does not append a second charset to it.
    return Response(encode(REGISTRY), headers={"content-type": content_type})


async def count_request(message: Message, scope: Scope) -> None:
    """Count one HTTP response by its route template and status class, such as 2xx.

    Runs as a `before_send` hook, which receives every response, including 404s for paths that
    matched no route and errors turned into responses by the exception handlers.
    """
    if message["type"] != "http.response.start":
        return
    route = scope.get("path_template") or UNMATCHED_ROUTE
    status = f"{message['status'] // 100}xx"
    HTTP_REQUESTS.labels(route=route, status=status).inc()
