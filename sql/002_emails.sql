-- One row per email (one recipient of one message): its current status, and the due queue.
-- Written in the same transaction as the events that change it, so it always agrees with
-- the log and can be rebuilt from it.
CREATE TABLE emails (
    request_id       uuid PRIMARY KEY,
    message_id       uuid NOT NULL,
    -- Position of the MessageSubmitted event that contains the body, stored once per message.
    message_position bigint NOT NULL,
    topic_id         text NOT NULL,
    recipient        text NOT NULL,
    -- scheduled: waiting for its time; queued: due, waiting for a dispatcher;
    -- sending: claimed by a dispatcher (lease_until says until when);
    -- sent, failed, cancelled, suppressed: final; uncertain: its dispatcher died mid-send.
    status           text NOT NULL CHECK (status IN (
                         'scheduled', 'queued', 'sending', 'sent', 'failed',
                         'cancelled', 'suppressed', 'uncertain')),
    -- When it may be sent; NULL once it has left the queue for good.
    due_at           timestamptz,
    attempt          integer NOT NULL DEFAULT 0,
    lease_until      timestamptz,
    claimed_by       text,
    ses_message_id   text UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- The due queue: only rows still waiting are in the index, so it stays small.
CREATE INDEX emails_due ON emails (due_at) WHERE due_at IS NOT NULL;
-- Cancelling a topic finds its unsent emails without scanning the sent ones.
CREATE INDEX emails_topic_unsent ON emails (topic_id) WHERE status IN ('scheduled', 'queued');
