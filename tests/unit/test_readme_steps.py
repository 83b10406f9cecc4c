"""The runner that follows a guide's shell steps and compares their output with the guide's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.acceptance.readme import Shell, Step, output_matches, section, steps

GUIDE = """# Tool

## Quick start

```sh
pip install tool
```

## Walkthrough

Submit one:

```sh
curl -s -X POST http://localhost:3000/v1/things -d '{"a":1}'
```

```json
{"id": "7b0f5b1e-6d3a-4c8e-9f3e-2a1d5c7e9b10", "at": "2026-12-04T20:00:00Z", "count": 1}
```

Then read it.

```sh
curl -s http://localhost:3000/v1/things/$ID
```

Some prose, then a block that is not its output:

```json
{"not": "output"}
```

### A sub-section stays in the walkthrough

```bash
# a shell comment is not a heading
echo done
```

```text
done
```

## Tests

```sh
pytest
```
"""


def test_section_bounds() -> None:
    """A section runs to the next heading of its level, keeping its sub-sections."""
    text = section(GUIDE, "Walkthrough")
    assert text.startswith("## Walkthrough")
    assert "echo done" in text
    assert "pytest" not in text
    assert "pip install" not in text
    with pytest.raises(AssertionError, match="no heading"):
        section(GUIDE, "Missing")


def test_steps_with_outputs() -> None:
    """Each shell block is a step; only a block right after it is its expected output."""
    found = steps(GUIDE, "Walkthrough")
    assert [step.command.split()[0] for step in found] == ["curl", "curl", "#"]
    assert found[0].expected_language == "json"
    assert found[0].expected is not None
    assert '"count": 1' in found[0].expected
    assert found[1].expected is None
    assert found[2].expected == "done\n"
    assert GUIDE.splitlines()[found[0].line - 1] == "```sh"


def test_read_only_steps() -> None:
    """Requests with a method that writes, or with a body, are never repeated."""
    assert Step("curl -s http://x/v1/topics/a", None, None, 1).read_only
    assert not Step("curl -s -X POST http://x/v1/messages", None, None, 1).read_only
    assert not Step("curl -s -XDELETE http://x/v1/messages/1", None, None, 1).read_only
    assert not Step("curl -s http://x -d '{}'", None, None, 1).read_only
    assert not Step("curl -s http://x --data-binary @f.json", None, None, 1).read_only


def test_json_compared_as_data() -> None:
    """Key order and spacing do not matter; ids and times match any id and time."""
    expected = '{"id": "7b0f5b1e-6d3a-4c8e-9f3e-2a1d5c7e9b10", "at": "2026-12-04T20:00:00Z"}'
    actual = '{"at":"2027-01-01T08:30:12.345+00:00","id":"00000000-0000-4000-8000-000000000000"}'
    assert output_matches(expected, actual, "json", "key")


@pytest.mark.parametrize(
    "actual",
    [
        '{"id": "7b0f5b1e-6d3a-4c8e-9f3e-2a1d5c7e9b10", "count": 2}',
        '{"id": "7b0f5b1e-6d3a-4c8e-9f3e-2a1d5c7e9b10"}',
        '{"id": "not-an-id", "count": 1}',
        '{"id": "7b0f5b1e-6d3a-4c8e-9f3e-2a1d5c7e9b10", "count": 1, "extra": true}',
        '{"id": "7b0f5b1e-6d3a-4c8e-9f3e-2a1d5c7e9b10", "count": "1"}',
        "not json",
    ],
)
def test_json_differences_caught(actual: str) -> None:
    """A different value, a missing or extra key, or another type is a mismatch."""
    expected = '{"id": "7b0f5b1e-6d3a-4c8e-9f3e-2a1d5c7e9b10", "count": 1}'
    assert not output_matches(expected, actual, "json", "key")


def test_durations_match_any_duration() -> None:
    """A duration such as the elapsed time of a request matches any other duration."""
    key = "s3cret-key"
    assert output_matches('{"elapsed": "4.1ms"}', '{"elapsed":"12ms"}', "json", key)
    assert output_matches("took 2s", "took 0.35s", "text", key)
    assert not output_matches('{"elapsed": "4.1ms"}', '{"elapsed": "soon"}', "json", key)


def test_text_masks_api_key() -> None:
    """The running service's key matches <api-key> in the guide, line by line."""
    assert output_matches("key: <api-key>\nok", "key: s3cret-key\nok\n", "text", "s3cret-key")
    assert not output_matches("key: <api-key>\nok", "key: other\nok", "text", "s3cret-key")
    assert not output_matches("one\ntwo", "one", "text", "k")


def test_shell_carries_variables(tmp_path: Path) -> None:
    """A variable set by one step is seen by the next, and the base URL is substituted."""
    shell = Shell(tmp_path, dict(os.environ), "http://127.0.0.1:4123", "k")
    shell.follow(Step("ID=$(echo 42)", None, None, 1))
    output = shell.follow(
        Step("echo $ID http://localhost:3000/x", "42 http://localhost:3000/x\n", "text", 2)
    )
    assert output == "42 http://127.0.0.1:4123/x\n"


def test_shell_reports_mismatch(tmp_path: Path) -> None:
    """A step whose output differs fails with the guide's line and both outputs."""
    shell = Shell(tmp_path, dict(os.environ), "http://127.0.0.1:4123", "k")
    with pytest.raises(AssertionError) as raised:
        shell.follow(Step("echo no", "yes\n", "text", 17), retry_seconds=0.2)
    message = str(raised.value)
    assert "line 17" in message
    assert "expected:\nyes" in message
    assert "actual:\nno" in message


def test_shell_fails_on_exit_status(tmp_path: Path) -> None:
    """A step without expected output must still exit with 0."""
    shell = Shell(tmp_path, dict(os.environ), "http://127.0.0.1:4123", "k")
    with pytest.raises(AssertionError, match="exit status: 3"):
        shell.follow(Step("exit 3", None, None, 5), retry_seconds=0)
