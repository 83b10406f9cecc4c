-- The suppression list: addresses that must not be sent to, kept in the same transaction
-- as the RecipientSuppressed and RecipientUnsuppressed events (stream 'recipient:<address>').
CREATE TABLE suppressions (
    -- The address as service.suppression.suppression_key writes it: domain lower-cased.
    address    text PRIMARY KEY,
    reason     text NOT NULL CHECK (reason IN ('bounce', 'complaint', 'unsubscribe', 'manual')),
    request_id uuid,
    note       text,
    created_at timestamptz NOT NULL DEFAULT now()
);
