"""Fixtures that run the real `ses-sender run --local` process for acceptance tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.service import LocalService, service_root, start_local_service


@pytest.fixture(scope="session")
def local_service() -> Iterator[LocalService]:
    """One `ses-sender run --local` shared by the acceptance tests, stopped with SIGTERM.

    The session ends with a check that the process exited with status 0.
    """
    with service_root() as root:
        service = start_local_service(root)
        try:
            yield service
        finally:
            code = service.stop()
            assert code == 0, f"ses-sender exited with {code}; output:\n{service.output()}"


@pytest.fixture
def scratch_root() -> Iterator[Path]:
    """A folder for a service that one test starts and stops itself."""
    with service_root() as root:
        yield root
