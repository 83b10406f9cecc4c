"""The error responses documented for every operation of the OpenAPI document."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar, delete, get, post
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody

from service.api.auth import SECURITY, require_api_key
from service.api.error_responses import document_error_responses
from service.api.errors import ErrorBody


class Thing(msgspec.Struct):
    name: str


@get("/open", sync_to_thread=False)
def open_probe() -> Thing:
    return Thing("open")


@get("/things/{thing_id:str}", guards=[require_api_key], security=SECURITY, sync_to_thread=False)
def read_thing(thing_id: FromPath[str]) -> Thing:
    return Thing(thing_id)


@post("/things", guards=[require_api_key], security=SECURITY, sync_to_thread=False)
def add_thing(data: JSONBody[Thing]) -> Thing:
    return data


@delete(
    "/things/{thing_id:str}",
    responses={404: ResponseSpec(Thing, description="Its own 404.")},
    sync_to_thread=False,
)
def remove_thing(thing_id: FromPath[str]) -> None:
    return None


def documented() -> dict[str, Any]:
    app = Litestar([open_probe, read_thing, add_thing, remove_thing])
    document_error_responses(app)
    schema: dict[str, Any] = app.openapi_schema.to_schema()
    return schema


def statuses(schema: dict[str, Any], method: str, path: str) -> list[str]:
    return sorted(schema["paths"][path][method]["responses"])


def response_schema(schema: dict[str, Any], method: str, path: str, status: str) -> Any:
    return schema["paths"][path][method]["responses"][status]["content"]["application/json"][
        "schema"
    ]


def test_open_operation_gets_400_only() -> None:
    """An unguarded operation without path parameters or a body documents a 400."""
    assert statuses(documented(), "get", "/open") == ["200", "400"]


def test_guarded_path_operation() -> None:
    """A guarded operation with a path parameter documents 401 and 404 too."""
    assert statuses(documented(), "get", "/things/{thing_id}") == ["200", "400", "401", "404"]


def test_body_operation_gets_413() -> None:
    """An operation that takes a body documents 413 for oversized ones."""
    assert statuses(documented(), "post", "/things") == ["201", "400", "401", "413"]


def test_errors_use_error_body() -> None:
    """The shared errors have the ErrorBody shape, not Litestar's default one."""
    schema = documented()
    assert response_schema(schema, "get", "/open", "400") == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    properties = schema["components"]["schemas"]["ErrorBody"]["properties"]
    assert set(properties) == set(ErrorBody.__struct_fields__)


def test_handler_responses_win() -> None:
    """A response the handler documents itself is kept over the shared one."""
    schema = documented()
    assert response_schema(schema, "delete", "/things/{thing_id}", "404") == {
        "$ref": "#/components/schemas/Thing"
    }
