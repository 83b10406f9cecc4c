-- Shared sending limits: the rate limiter, the daily quota and sending holds, in one place so
-- that every dispatcher, on any host, draws from the same budget and a restart forgets nothing.

-- One row. The rate limiter is a GCRA (generic cell rate algorithm) without burst tolerance:
-- `next_slot` is the earliest time the next send may start. Reserving n sends hands out the
-- slots next_slot, next_slot + T, ..., next_slot + (n-1)T with T = 1 / rate, and moves
-- next_slot past them. After an idle period next_slot lies in the past and is raised to now,
-- so an idle limiter never saves up a burst.
CREATE TABLE send_limiter (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    next_slot    timestamptz NOT NULL DEFAULT now(),
    -- Factor (0.1 to 1) applied to the rate after SES throttled a send; it climbs back to 1
    -- by 0.1 every 10 seconds without throttling.
    slowdown     double precision NOT NULL DEFAULT 1.0,
    throttled_at timestamptz,
    -- While hold_until lies ahead no send starts, for the reason in hold_reason
    -- ('daily_quota' or 'account_paused', as SES reported).
    hold_until   timestamptz,
    hold_reason  text
);
INSERT INTO send_limiter DEFAULT VALUES;

-- Recipients reserved per minute, for the rolling 24-hour quota. A minute is counted until
-- 24 hours after its end, so the window never frees a send early.
CREATE TABLE send_quota_usage (
    minute timestamptz PRIMARY KEY,
    sends  integer NOT NULL
);

-- Reserve up to `requested` sends under both limits in one round trip. Returns how many were
-- granted, the delay (seconds, from the database clock) before the first slot, the spacing
-- between slots and the first slot itself. When none is granted, `held_until` and `held_for` say why and until
-- when. The row lock on send_limiter serialises reservations from every dispatcher.
CREATE FUNCTION reserve_sends(requested integer, max_rate double precision, daily_quota bigint)
RETURNS TABLE (granted integer, first_delay double precision, spacing double precision,
               held_until timestamptz, held_for text, first_slot timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    state   send_limiter%ROWTYPE;
    at      timestamptz;
    used    bigint;
    factor  double precision;
    step    double precision;
    first   timestamptz;
BEGIN
    SELECT * INTO state FROM send_limiter WHERE id FOR UPDATE;
    -- Read the clock only once the lock is held: the delays returned are measured from
    -- here, and a wait for the lock must not be counted in them.
    at := clock_timestamp();
    IF state.hold_until > at THEN
        RETURN QUERY SELECT 0, NULL::float8, NULL::float8, state.hold_until, state.hold_reason,
                            NULL::timestamptz;
        RETURN;
    END IF;

    SELECT coalesce(sum(u.sends), 0) INTO used
    FROM send_quota_usage u
    WHERE u.minute > at - interval '24 hours 1 minute';
    granted := least(requested, greatest(daily_quota - used, 0))::integer;
    IF granted = 0 THEN
        -- The oldest counted minute is the first to leave the window.
        SELECT min(u.minute) + interval '24 hours 1 minute' INTO held_until
        FROM send_quota_usage u
        WHERE u.minute > at - interval '24 hours 1 minute';
        RETURN QUERY SELECT 0, NULL::float8, NULL::float8,
                            coalesce(held_until, at + interval '1 minute'), 'daily_quota'::text,
                            NULL::timestamptz;
        RETURN;
    END IF;

    factor := 1.0;
    IF state.throttled_at IS NOT NULL THEN
        factor := least(1.0, state.slowdown
                        + 0.1 * floor(extract(epoch FROM at - state.throttled_at) / 10));
    END IF;
    step := 1.0 / (max_rate * factor);
    first := greatest(state.next_slot, at);
    UPDATE send_limiter
    SET next_slot = first + make_interval(secs => granted * step)
    WHERE id;
    INSERT INTO send_quota_usage (minute, sends)
    VALUES (date_trunc('minute', at), granted)
    ON CONFLICT (minute) DO UPDATE SET sends = send_quota_usage.sends + excluded.sends;
    DELETE FROM send_quota_usage u WHERE u.minute < at - interval '25 hours';

    RETURN QUERY SELECT granted, extract(epoch FROM first - at)::float8, step,
                        NULL::timestamptz, NULL::text, first;
END;
$$;

-- Transient SES failures of the current email, counted apart from throttling and quota
-- retries, which never use up an email's attempts.
ALTER TABLE emails ADD COLUMN transient_failures integer NOT NULL DEFAULT 0;
