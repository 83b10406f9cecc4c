"""Running the shell steps of a Markdown guide and comparing their output with the guide's.

Conventions, so that a README section can be followed by a test exactly as a user would:

- A step is a fenced `sh` block inside the chosen section. Steps run in order, in one shell
  state: variables that a step sets (for example `REQUEST_ID=...`) are seen by later steps.
- A fenced `json` or `text` block right after a step is that step's expected output. Blocks
  of other languages, and steps without an expected block, only have to exit with 0.
- Values that change from run to run match any value of the same kind: UUIDs, RFC 3339
  timestamps and durations such as `4.1ms`. The API key in an output matches `<api-key>` in
  the guide. Trailing spaces on a line do not count (editors strip them from Markdown, and
  psql pads its header with them). Everything else must be equal. JSON is compared as data,
  so key order and spacing do not matter.
- `http://localhost:3000` in steps and expected output stands for the running service.
- A read-only step (no POST, PUT, PATCH or DELETE, no request body) whose output differs is
  run again for a while, because its output may depend on work the service does in the
  background, such as sending and counting.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOCUMENTED_BASE_URL = "http://localhost:3000"

_FENCE = re.compile(r"^```(?P<language>[\w-]*)\s*\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^(?P<level>#{1,6})\s+(?P<title>.+?)\s*$", re.MULTILINE)
_WRITES = re.compile(r"-X\s*(POST|PUT|PATCH|DELETE)\b|\s(-d|--data[\w-]*|-F|--form)\s", re.I)
_VOLATILE = {
    "uuid": re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I),
    "duration": re.compile(r"(?<![\w.])\d+(\.\d+)?(ns|µs|us|ms|s)(?!\w)"),
    "timestamp": re.compile(
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?"
    ),
}


@dataclass(frozen=True)
class Step:
    command: str
    expected: str | None
    expected_language: str | None
    line: int
    """Line of the command block in the guide, for failure messages."""

    @property
    def read_only(self) -> bool:
        return _WRITES.search(f" {self.command} ") is None


def section(markdown: str, title: str) -> str:
    """Return the text under the heading `title`, up to the next heading of its level or above."""
    fences = [block.span() for block in _FENCE.finditer(markdown)]
    # A line starting with # inside a code block (a shell comment) is not a heading.
    headings = [
        heading
        for heading in _HEADING.finditer(markdown)
        if not any(start <= heading.start() < end for start, end in fences)
    ]
    for index, heading in enumerate(headings):
        if heading.group("title") != title:
            continue
        level = len(heading.group("level"))
        end = len(markdown)
        for following in headings[index + 1 :]:
            if len(following.group("level")) <= level:
                end = following.start()
                break
        return markdown[heading.start() : end]
    raise AssertionError(f"no heading {title!r} in the guide")


def steps(markdown: str, title: str) -> list[Step]:
    """Return the shell steps of one section with their expected outputs."""
    text = section(markdown, title)
    offset = markdown.index(text)
    blocks = list(_FENCE.finditer(text))
    found = []
    for index, block in enumerate(blocks):
        if block.group("language") not in ("sh", "bash", "shell"):
            continue
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        expected = language = None
        if following is not None and following.group("language") in ("json", "text"):
            between = text[block.end() : following.start()]
            # Only an output block that directly follows (prose may not sit between) counts.
            if not between.strip():
                expected, language = following.group("body"), following.group("language")
        line = markdown.count("\n", 0, offset + block.start()) + 1
        found.append(Step(block.group("body").strip(), expected, language, line))
    return found


def substitute(text: str, base_url: str) -> str:
    return text.replace(DOCUMENTED_BASE_URL, base_url)


class Shell:
    """Runs steps one after another, carrying the variables they set from one to the next."""

    def __init__(self, root: Path, env: Mapping[str, str], base_url: str, api_key: str) -> None:
        self.state = root / "shell-state.sh"
        self.state.write_text("")
        self.env = dict(env)
        self.base_url = base_url
        self.api_key = api_key
        self.cwd = root

    def follow(self, step: Step, retry_seconds: float = 30) -> str:
        """Run `step` and check it against the guide; return its output.

        Raises AssertionError naming the guide's line, with the expected and actual output.
        """
        deadline = time.monotonic() + retry_seconds
        while True:
            result = self.run(step)
            if result.returncode == 0 and self._as_documented(step, result.stdout):
                return result.stdout
            if not step.read_only or time.monotonic() > deadline:
                raise AssertionError(
                    f"step at line {step.line} of the guide does not do what it shows:\n"
                    f"$ {step.command}\nexit status: {result.returncode}\n"
                    f"expected:\n{step.expected}\nactual:\n{result.stdout}{result.stderr}"
                )
            time.sleep(0.5)

    def _as_documented(self, step: Step, stdout: str) -> bool:
        if step.expected is None or step.expected_language is None:
            return True
        expected = substitute(step.expected, self.base_url)
        return output_matches(expected, stdout, step.expected_language, self.api_key)

    def run(self, step: Step, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        # `set -a` exports every assignment, so `export -p` saves what the step set.
        script = (
            f'set -a; . "{self.state}"\n'
            f"{substitute(step.command, self.base_url)}\n"
            f'status=$?; export -p > "{self.state}"; exit $status\n'
        )
        return subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def output_matches(expected: str, actual: str, language: str, api_key: str) -> bool:
    """Compare a step's output with the guide's, treating volatile values as wildcards."""
    if language == "json":
        try:
            actual_data = json.loads(actual)
        except json.JSONDecodeError:
            return False
        return _data_matches(json.loads(expected), actual_data, api_key)
    expected_lines = [line.rstrip() for line in expected.strip().splitlines()]
    actual_lines = [line.rstrip() for line in actual.strip().splitlines()]
    if len(expected_lines) != len(actual_lines):
        return False
    return all(
        _text_matches(e, a, api_key) for e, a in zip(expected_lines, actual_lines, strict=True)
    )


def _data_matches(expected: Any, actual: Any, api_key: str) -> bool:
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(_data_matches(expected[k], actual[k], api_key) for k in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_data_matches(e, a, api_key) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, str) and isinstance(actual, str):
        return _text_matches(expected, actual, api_key)
    return bool(type(expected) is type(actual) and expected == actual)


def _text_matches(expected: str, actual: str, api_key: str) -> bool:
    """Equal once every volatile value in both is replaced by its kind."""
    return _masked(expected, None) == _masked(actual, api_key)


def _masked(text: str, api_key: str | None) -> str:
    if api_key:
        text = text.replace(api_key, "<api-key>")
    for kind, pattern in _VOLATILE.items():
        text = pattern.sub(f"<{kind}>", text)
    return text
