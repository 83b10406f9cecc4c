-- reserve_slots: reserve_sends as in 016_send_slot_spacing.sql, also returning the quota
-- minute the granted sends were counted in. A dispatcher gives back slots that went unused
-- (no send could start within their tolerance, or it stopped holding some) by subtracting
-- them from that minute, so unused slots do not use up the daily quota.
-- reserve_sends stays as it was, for dispatchers of the previous release during an upgrade.
CREATE FUNCTION reserve_slots(requested integer, max_rate double precision, daily_quota bigint)
RETURNS TABLE (granted integer, first_delay double precision, spacing double precision,
               held_until timestamptz, held_for text, first_slot timestamptz,
               quota_minute timestamptz)
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
                            NULL::timestamptz, NULL::timestamptz;
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
                            NULL::timestamptz, NULL::timestamptz;
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
    -- Rounded up to the microsecond a timestamptz holds, so no slot comes closer than step.
    SET next_slot = first + make_interval(secs => ceil(granted * step * 1e6) / 1e6)
    WHERE id;
    INSERT INTO send_quota_usage (minute, sends)
    VALUES (date_trunc('minute', at), granted)
    ON CONFLICT (minute) DO UPDATE SET sends = send_quota_usage.sends + excluded.sends;
    DELETE FROM send_quota_usage u WHERE u.minute < at - interval '25 hours';

    RETURN QUERY SELECT granted, extract(epoch FROM first - at)::float8, step,
                        NULL::timestamptz, NULL::text, first, date_trunc('minute', at);
END;
$$;
