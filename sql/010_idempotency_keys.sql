-- Idempotency keys of POST /v1/messages: the first response for a key is stored in the
-- same transaction as the emails it accepted, and replayed for a retry with the same body.
--
-- The primary key is also the lock that keeps two concurrent requests with one key from
-- both writing. The second INSERT waits for the first transaction's uncommitted row, then
-- finds the committed row and replays its response. If the first rolled back, the second
-- proceeds itself.
CREATE TABLE idempotency_keys (
    key             text PRIMARY KEY,
    -- SHA-256 of the request body in canonical JSON (sorted keys, no whitespace), so a
    -- retry that only reorders fields still matches.
    body_hash       bytea NOT NULL,
    -- NULL only inside the transaction that claimed the key, which fills them in before it
    -- commits; other transactions never see them NULL.
    response_status integer,
    response_body   bytea,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Expired keys are pruned a few at a time by later keyed requests, oldest first.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
