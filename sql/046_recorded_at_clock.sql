-- recorded_at is when an event was stored. now() is the start of the transaction, which can
-- come before the moment an event in it was created (occurred_at), so take the clock at the
-- insert itself.
ALTER TABLE events ALTER COLUMN recorded_at SET DEFAULT clock_timestamp();
