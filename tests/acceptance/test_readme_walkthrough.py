"""The README's walkthrough, followed step by step against `ses-sender run --local`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.acceptance.readme import Shell, steps
from tests.acceptance.service import start_local_service

pytestmark = pytest.mark.acceptance

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_walkthrough(scratch_root: Path) -> None:
    """Every walkthrough step runs as written and prints what the README shows."""
    walkthrough = steps(README.read_text(), "Walkthrough")
    assert walkthrough, "the README has no shell steps under Walkthrough"
    service = start_local_service(scratch_root, default_data_dir=True)
    try:
        # The README runs commands from the clone, where the quick start made .venv.
        (scratch_root / ".venv").symlink_to(Path(sys.prefix))
        # The service's own links (the pixel in each email) use SERVER_HOST, which is
        # http://localhost:SERVER_PORT by default; the guide's URLs stand for the same.
        base_url = f"http://localhost:{service.port}"
        shell = Shell(scratch_root, service.env, base_url, service.api_key)
        for step in walkthrough:
            shell.follow(step)
    finally:
        code = service.stop()
    assert code == 0, service.output()
    # Local mode stands in a daily quota for the one the emulator cannot report.
    assert "daily_quota_defaulted" not in service.output()
