"""The stub SES endpoint in a process of its own, so that the test process's own work does
not delay the arrival times it records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SERVER = Path(__file__).with_name("ses_stub_server.py")


@contextmanager
def stub_process(calls_file: Path) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Yield the stub's URL and a list that holds its calls once the block has ended."""
    root = str(SERVER.parents[2])
    process = subprocess.Popen(
        [sys.executable, str(SERVER), str(calls_file)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        env=os.environ | {"PYTHONPATH": root},
    )
    assert process.stdout is not None
    assert process.stdin is not None
    calls: list[dict[str, Any]] = []
    try:
        yield process.stdout.readline().decode().strip(), calls
    finally:
        process.stdin.close()
        process.wait(60)
        process.stdout.close()
        calls.extend(json.loads(line) for line in calls_file.read_text().splitlines())
