"""Run the test stub SES endpoint (tests.support.ses_stub) in a process of its own.

Prints its URL on the first line of stdout, answers until stdin closes, then writes one
JSON line per SendEmail call (recipient, monotonic and wall-clock arrival) to the file
named on the command line. time.monotonic() is CLOCK_MONOTONIC on Linux, shared by every
process of the host, so arrival times compare with times taken in the test process.

    python tests/support/ses_stub_server.py CALLS_FILE
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.support.ses_stub import StubSes


def main() -> None:
    # Arrival times are taken in handler threads; a short GIL switch interval keeps a
    # thread that has a request waiting from being held up by the others.
    sys.setswitchinterval(0.0005)
    stub = StubSes().start()
    print(stub.url, flush=True)
    sys.stdin.read()
    stub.stop()
    with Path(sys.argv[1]).open("w") as out:
        for call in stub.calls:
            recipient = call.body["Destination"]["ToAddresses"][0]
            out.write(json.dumps({"to": recipient, "at": call.at, "wall": call.wall}) + "\n")


if __name__ == "__main__":
    main()
