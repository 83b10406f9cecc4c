"""Prometheus metrics, defined in one place so names stay stable for alerting.

Every process exposes its own registry; run one scrape target per process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

SENDS = Counter(
    "ses_sender_sends",
    "SES send attempts by outcome: sent, retry, failed, uncertain, suppressed.",
    ["outcome"],
    registry=REGISTRY,
)
SES_LATENCY = Histogram(
    "ses_sender_ses_call_seconds",
    "Duration of SES SendEmail calls.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
LIMITER_WAIT = Histogram(
    "ses_sender_rate_limiter_wait_seconds",
    "Time a signed request waited for its rate slot before it was sent.",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60),
    registry=REGISTRY,
)
SLOTS_MISSED = Counter(
    "ses_sender_rate_slots_missed",
    "Rate slots left unused: no send of the dispatcher could start within their tolerance.",
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "ses_sender_due_queue_depth",
    "Emails due now and waiting for a dispatcher.",
    registry=REGISTRY,
)
QUEUE_OLDEST_AGE = Gauge(
    "ses_sender_due_queue_oldest_age_seconds",
    "How long the oldest due email has been waiting past its due time.",
    registry=REGISTRY,
)
FEEDBACK = Counter(
    "ses_sender_feedback",
    "SES feedback events received, by type (Delivery, Bounce, ...) and outcome.",
    ["type", "outcome"],
    registry=REGISTRY,
)
PROJECTION_LAG_EVENTS = Gauge(
    "ses_sender_projection_lag_events",
    "Events in the log that a projection has not applied yet.",
    ["projection"],
    registry=REGISTRY,
)
PROJECTION_LAG_SECONDS = Gauge(
    "ses_sender_projection_lag_seconds",
    "Age of the oldest event a projection has not applied yet.",
    ["projection"],
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "ses_sender_http_requests",
    "HTTP requests served, by route and status class.",
    ["route", "status"],
    registry=REGISTRY,
)
EMAILS_ACCEPTED = Counter(
    "ses_sender_emails_accepted",
    "Emails accepted by POST /v1/messages, by initial status: queued or scheduled.",
    ["status"],
    registry=REGISTRY,
)
EMAILS_CANCELLED = Counter(
    "ses_sender_emails_cancelled",
    "Emails cancelled before sending, by scope: request or topic.",
    ["scope"],
    registry=REGISTRY,
)
TRACKING = Counter(
    "ses_sender_tracking_requests",
    "Tracking requests by kind (open, click, unsubscribe) and outcome "
    "(recorded, invalid_token, unknown_email, failed).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
