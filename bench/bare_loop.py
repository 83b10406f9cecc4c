"""Bare send loops with no database, to compare the dispatcher's throughput against.

`boto3`: the SendEmail calls an application would make with boto3 alone, one shared client
used from a thread pool. `sender`: the same calls through the SesSender the dispatcher uses,
so that the difference to the pipeline is the pipeline's own cost.

Run as a process (several at once compare with several dispatcher processes):

    python bench/bare_loop.py {boto3|sender} ENDPOINT COUNT THREADS PREFIX

It builds COUNT emails, prints "ready", waits for a line on stdin, sends them and prints
{"start": ..., "end": ...} (time.time()).
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, cast

from service.config import Settings
from service.dispatch.ses import (
    OutgoingEmail,
    create_client,
    create_sender,
    send_email,
    send_request,
)
from service.secret import Secret

Kind = Literal["boto3", "sender"]

HTML = "<html><body><h1>Spring sale</h1>" + "<p>Twenty percent off.</p>" * 80 + "</body></html>"
SENDER = "sender@example.com"


def emails(count: int, prefix: str) -> list[OutgoingEmail]:
    return [
        OutgoingEmail(SENDER, f"{prefix}{i}@example.com", "Spring sale", HTML,
                      "Twenty percent off.", tags=(("request_id", f"r{i}"), ("topic_id", "bench")))
        for i in range(count)
    ]


def loop(kind: Kind, settings: Settings, batch: list[OutgoingEmail], threads: int,
         ready: bool = False) -> tuple[float, float]:
    """Send `batch` from `threads` threads; return the wall-clock start and end."""
    if kind == "boto3":
        client = create_client(settings, max_connections=threads)

        def send(email: OutgoingEmail) -> str:
            return send_email(client, email, None)
    else:
        sender = create_sender(settings, max_connections=threads)

        def send(email: OutgoingEmail) -> str:
            return sender.send(sender.sign(send_request(email, None)))

    with ThreadPoolExecutor(threads) as pool:
        if ready:
            print("ready", flush=True)
            sys.stdin.readline()
        start = time.time()
        list(pool.map(send, batch))
        return start, time.time()


def settings_for(endpoint: str) -> Settings:
    return Settings(database_url=Secret("postgresql://unused@127.0.0.1/unused"),
                    data_dir=Path("."), ses_endpoint_url=endpoint, email_sender=SENDER)


def main() -> None:
    kind, endpoint, count, threads, prefix = sys.argv[1:6]
    if kind not in ("boto3", "sender"):
        raise SystemExit(f"unknown loop {kind!r}: use boto3 or sender")
    start, end = loop(cast(Kind, kind), settings_for(endpoint), emails(int(count), prefix),
                      int(threads), ready=True)
    print(json.dumps({"start": start, "end": end}), flush=True)


if __name__ == "__main__":
    main()
