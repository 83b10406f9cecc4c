"""Shared by the projection benchmarks: a fresh migrated database and a bulk event history."""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from service.db.embedded import EmbeddedPostgres
from service.db.migrate import migrate


@contextmanager
def fresh_database(server_url: str | None) -> Iterator[str]:
    """Yield the URL of a new migrated database: on `server_url`, or an embedded server."""
    with tempfile.TemporaryDirectory(prefix="ses-sender-bench-") as folder:
        embedded = None
        if server_url is None:
            embedded = EmbeddedPostgres(Path(folder))
            server_url = make_conninfo(embedded.start(), dbname="postgres")
        name = f"bench_{uuid.uuid4().hex[:10]}"
        try:
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
            url = make_conninfo(server_url, dbname=name)
            migrate(url)
            yield url
        finally:
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
            if embedded is not None:
                embedded.stop()


# Five events per email, for `requests` emails in blocks of 10,000: each block's requests,
# then its sends, its deliveries (every 20th a bounce, every 50th bounce soft), then two
# engagement events (opens, a third of them machine opens, and clicks). Consecutive events
# of a block touch different emails, as when feedback trickles in long after the sends,
# which is the expensive case for email_status. 50 topics; times spread over a week.
_GENERATE = """
INSERT INTO events (stream, type, data, occurred_at)
SELECT 'bench-' || i,
       CASE k WHEN 0 THEN 'EmailRequested' WHEN 1 THEN 'EmailSent'
              WHEN 2 THEN CASE WHEN i %% 20 = 0 THEN 'EmailBounced' ELSE 'EmailDelivered' END
              WHEN 3 THEN 'EmailOpened'
              ELSE CASE WHEN i %% 2 = 0 THEN 'EmailOpened' ELSE 'EmailClicked' END END,
       CASE k
         WHEN 0 THEN jsonb_build_object(
             'request_id', 'bench-' || i, 'message_id', 'm-' || (i / 100),
             'topic_id', 'topic-' || (i %% 50), 'recipient', 'user' || i || '@example.com',
             'scheduled_at', '2026-11-01T00:00:00Z')
         WHEN 1 THEN jsonb_build_object(
             'request_id', 'bench-' || i, 'topic_id', 'topic-' || (i %% 50),
             'ses_message_id', 'ses-' || i, 'attempt', 1)
         WHEN 2 THEN jsonb_build_object(
             'request_id', 'bench-' || i, 'topic_id', 'topic-' || (i %% 50),
             'ses_message_id', 'ses-' || i, 'recipient', 'user' || i || '@example.com')
             || CASE WHEN i %% 20 = 0 THEN jsonb_build_object(
                    'bounce_type', CASE WHEN i %% 50 = 0 THEN 'Transient' ELSE 'Permanent' END)
                ELSE '{}'::jsonb END
         WHEN 3 THEN jsonb_build_object(
             'request_id', 'bench-' || i, 'topic_id', 'topic-' || (i %% 50),
             'machine', i %% 3 = 0)
         ELSE jsonb_build_object(
             'request_id', 'bench-' || i, 'topic_id', 'topic-' || (i %% 50))
             || CASE WHEN i %% 2 = 1 THEN jsonb_build_object('link', 'https://example.com/')
                ELSE '{}'::jsonb END
       END,
       timestamptz '2026-11-01' + (i * interval '3 seconds') + (k * interval '10 minutes')
FROM generate_series(%s, %s - 1) AS i, generate_series(0, 4) AS k
ORDER BY i / 10000, k, i
"""


def generate_history(url: str, requests: int) -> float:
    """Insert 5 * `requests` events, one transaction per block; return the seconds taken."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for start in range(0, requests, 10_000):
            conn.execute(_GENERATE, (start, min(start + 10_000, requests)))
        conn.execute("VACUUM ANALYZE events")
    return time.perf_counter() - started
