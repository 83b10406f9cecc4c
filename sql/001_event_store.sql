-- The event log: every action of the service, in order. It is also the outbox: workers
-- (dispatcher, projections) follow it and are woken by NOTIFY on the `events` channel.
--
-- Readers must never skip an event. `position` comes from a sequence when the row is
-- inserted, not when its transaction commits, so a reader walking positions could pass a
-- row whose transaction commits later with a smaller position. Each row therefore records
-- the id of the transaction that wrote it (`xact_id`), and readers only read rows whose
-- transaction is older than every transaction still running
-- (xact_id < pg_snapshot_xmin(pg_current_snapshot())), in (xact_id, position) order.
-- No row can appear later below that line, so a checkpoint of (xact_id, position) is
-- final. See "Transaction ID and Snapshot Information Functions" in the PostgreSQL manual.
CREATE TABLE events (
    position    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xact_id     xid8 NOT NULL DEFAULT pg_current_xact_id(),
    -- The request id of one email, a message id, or a key such as 'recipient:<address>'.
    stream      text NOT NULL,
    type        text NOT NULL,
    data        jsonb NOT NULL,
    -- When it happened at its source (SES's timestamp for feedback); recorded_at is when stored.
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    -- Set for events that arrive from outside and may arrive twice (SNS MessageId + recipient).
    dedupe_key  text
);

CREATE UNIQUE INDEX events_dedupe_key ON events (dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX events_stream ON events (stream, position);
CREATE INDEX events_read_order ON events (xact_id, position);

-- The service only appends. Updates and deletes are refused so that a bug, or a hand-typed
-- statement, cannot rewrite history that read models were built from.
CREATE FUNCTION events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
