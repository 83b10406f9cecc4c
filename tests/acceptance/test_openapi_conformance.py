"""Generated requests against the running service, checked against its own OpenAPI document.

schemathesis builds requests for every operation in `/schema/openapi.json`, sends them with
the API key to `ses-sender run --local`, and fails on any 5xx and on any response whose status,
content type, headers or body the document does not allow. The number of examples per
operation is kept small so that the run stays short; raise it locally for a deeper search.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.openapi import from_url
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.acceptance.service import LocalService

pytestmark = pytest.mark.acceptance

EXAMPLES_PER_OPERATION = 25


def check_operation(
    operation: APIOperation, mode: GenerationMode, service: LocalService
) -> None:
    """Send generated requests of one mode to one operation and validate every response."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        # The same examples on every run, so that a failure in CI fails again locally.
        derandomize=True,
        # Shrinking a failure against a live server is slow; the first failing case is enough.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(case: Case) -> None:
        case.call_and_validate(
            base_url=service.base_url,
            headers={"x-api-key": service.api_key},
            # A request can match the schema and still be invalid (an empty string where an
            # email address is expected), and unknown query parameters are ignored, not
            # rejected. Neither contradicts the schema, so these two checks are left out.
            excluded_checks=[positive_data_acceptance, negative_data_rejection],
            timeout=15,
        )

    run()


def generation_modes(operation: APIOperation) -> list[GenerationMode]:
    """Valid requests for every operation; invalid ones too where it takes any input."""
    has_input = any(True for _ in operation.iter_parameters()) or bool(operation.body)
    if has_input:
        return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    return [GenerationMode.POSITIVE]


def test_api_conforms(local_service: LocalService) -> None:
    """No generated request gets a 5xx or a response the OpenAPI document does not allow."""
    schema = from_url(f"{local_service.base_url}/schema/openapi.json", timeout=15)
    failures: dict[str, str] = {}
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in generation_modes(operation):
            label = f"{operation.label} ({mode.value})"
            try:
                check_operation(operation, mode, local_service)
            # schemathesis raises its findings as an exception group; report every one below.
            except (Exception, BaseExceptionGroup) as error:
                failures[label] = f"{type(error).__name__}: {error}"
            checked += 1
    assert checked > 0, "the OpenAPI document lists no operations"
    report = "\n\n".join(f"{label}\n{detail}" for label, detail in failures.items())
    assert not failures, f"{len(failures)} of {checked} runs failed:\n\n{report}"
