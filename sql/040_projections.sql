-- Read models derived from the event log, and each projection's position in it.
-- Every table here can be dropped and rebuilt from `events` with
-- `ses-sender projections rebuild`; analysts query them directly (docs/analysts.md).

-- One row per projection: the (xact_id, position) of the last event it applied. A batch
-- locks this row (SELECT ... FOR UPDATE) and updates it in the same transaction as the
-- read-model rows, so an event is applied exactly once even with several projectors running
-- and whatever moment a process dies at.
CREATE TABLE projection_checkpoints (
    projection     text PRIMARY KEY,
    xact_id        xid8 NOT NULL DEFAULT '0',
    position       bigint NOT NULL DEFAULT 0,
    events_applied bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

INSERT INTO projection_checkpoints (projection)
VALUES ('topic_stats'), ('hourly_counts'), ('email_status');

-- Per topic: how many emails reached each milestone (each email counted once per column),
-- engagement totals, and when the topic was first and last active.
CREATE TABLE topic_stats (
    topic_id          text PRIMARY KEY,
    messages          bigint NOT NULL DEFAULT 0,
    requested         bigint NOT NULL DEFAULT 0,
    scheduled         bigint NOT NULL DEFAULT 0,
    -- requested and not yet sent, failed, cancelled or suppressed
    pending           bigint NOT NULL DEFAULT 0,
    cancelled         bigint NOT NULL DEFAULT 0,
    suppressed        bigint NOT NULL DEFAULT 0,
    sent              bigint NOT NULL DEFAULT 0,
    send_retries      bigint NOT NULL DEFAULT 0,
    failed            bigint NOT NULL DEFAULT 0,
    uncertain         bigint NOT NULL DEFAULT 0,
    delivered         bigint NOT NULL DEFAULT 0,
    bounced_hard      bigint NOT NULL DEFAULT 0,
    bounced_soft      bigint NOT NULL DEFAULT 0,
    complained        bigint NOT NULL DEFAULT 0,
    rejected          bigint NOT NULL DEFAULT 0,
    delayed           bigint NOT NULL DEFAULT 0,
    rendering_failed  bigint NOT NULL DEFAULT 0,
    opened_unique     bigint NOT NULL DEFAULT 0,
    opened_total      bigint NOT NULL DEFAULT 0,
    opened_machine    bigint NOT NULL DEFAULT 0,
    clicked_unique    bigint NOT NULL DEFAULT 0,
    clicked_total     bigint NOT NULL DEFAULT 0,
    clicked_machine   bigint NOT NULL DEFAULT 0,
    unsubscribed      bigint NOT NULL DEFAULT 0,
    first_activity_at timestamptz NOT NULL,
    last_activity_at  timestamptz NOT NULL
);

-- GET /v1/topics lists topics newest first.
CREATE INDEX topic_stats_newest ON topic_stats (first_activity_at DESC, topic_id DESC);

-- Private to the topic_stats projection: which milestones each email has reached (a bit
-- set, see projections/topic_stats.py), so that every email is counted once per column.
CREATE TABLE topic_stats_emails (
    request_id text PRIMARY KEY,
    topic_id   text NOT NULL,
    milestones integer NOT NULL
);

-- Feedback and engagement events that cannot be attributed to a topic: SES feedback that
-- named no request when it arrived, or events about a request id never requested. Counted
-- by the event type reported (for held feedback, the type it carries).
CREATE TABLE unlinked_events (
    event_type     text PRIMARY KEY,
    events         bigint NOT NULL,
    first_event_at timestamptz NOT NULL,
    last_event_at  timestamptz NOT NULL
);

-- Per UTC hour (of occurred_at), event type and topic: how many events. topic_id is NULL for
-- events that belong to no topic (suppression list changes, unlinked feedback).
CREATE TABLE hourly_counts (
    hour       timestamptz NOT NULL,
    event_type text NOT NULL,
    topic_id   text,
    events     bigint NOT NULL,
    CONSTRAINT hourly_counts_key UNIQUE NULLS NOT DISTINCT (hour, event_type, topic_id)
);

CREATE INDEX hourly_counts_type_hour ON hourly_counts (event_type, hour);

-- One row per email (request): its current status and the time of each milestone. Times are
-- the earliest occurred_at of that kind of event; NULL when it has not happened.
CREATE TABLE email_status (
    request_id          text PRIMARY KEY,
    message_id          text,
    topic_id            text,
    recipient           text,
    -- requested, scheduled, retrying, uncertain, cancelled, suppressed, failed, sent,
    -- delayed, delivered, bounced, rejected, rendering_failed, complained; a later event
    -- replaces the status unless it ranks lower (projections/status_rules.py)
    status              text NOT NULL,
    ses_message_id      text,
    attempts            integer NOT NULL DEFAULT 0,
    last_error_code     text,
    bounce_type         text,
    opens               integer NOT NULL DEFAULT 0,
    machine_opens       integer NOT NULL DEFAULT 0,
    clicks              integer NOT NULL DEFAULT 0,
    requested_at        timestamptz,
    -- when it may be sent: the requested time, or the submission time for 'now'
    send_at             timestamptz,
    cancelled_at        timestamptz,
    suppressed_at       timestamptz,
    sent_at             timestamptz,
    failed_at           timestamptz,
    uncertain_at        timestamptz,
    delivered_at        timestamptz,
    delayed_at          timestamptz,
    bounced_at          timestamptz,
    complained_at       timestamptz,
    rejected_at         timestamptz,
    rendering_failed_at timestamptz,
    first_opened_at     timestamptz,
    last_opened_at      timestamptz,
    first_clicked_at    timestamptz,
    unsubscribed_at     timestamptz,
    last_event_at       timestamptz NOT NULL,
    last_position       bigint NOT NULL
);

CREATE INDEX email_status_topic ON email_status (topic_id, status);
CREATE INDEX email_status_ses_message_id ON email_status (ses_message_id)
    WHERE ses_message_id IS NOT NULL;
CREATE INDEX email_status_sent_at ON email_status (sent_at) WHERE sent_at IS NOT NULL;
