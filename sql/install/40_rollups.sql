-- llm_gateway install script, part 40_rollups.sql (see 00_schema.sql)

---------------------------------------------------------------------------
-- Rollups of the ledger, the ledger's partitions, and closed budget periods
-- (written by the worker's maintenance pass, see README "The background
-- worker")
---------------------------------------------------------------------------

-- Latency histograms (histogram.c): int8[] of log-scale bucket counts,
-- only the non-empty span kept (its lower bound says where it starts).
CREATE FUNCTION llm_gateway.hist_of(latency_ms numeric)
RETURNS bigint[]
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'llm_gateway_hist_of';
CREATE FUNCTION llm_gateway.hist_accum(state internal, latency_ms numeric)
RETURNS internal
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'llm_gateway_hist_accum';
CREATE FUNCTION llm_gateway.hist_merge_step(state internal, h bigint[])
RETURNS internal
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'llm_gateway_hist_merge_step';
CREATE FUNCTION llm_gateway.hist_final(state internal)
RETURNS bigint[]
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'llm_gateway_hist_final';
CREATE AGGREGATE llm_gateway.latency_hist(numeric) (
    SFUNC = llm_gateway.hist_accum, STYPE = internal,
    FINALFUNC = llm_gateway.hist_final);
CREATE AGGREGATE llm_gateway.hist_merge(bigint[]) (
    SFUNC = llm_gateway.hist_merge_step, STYPE = internal,
    FINALFUNC = llm_gateway.hist_final);
CREATE FUNCTION llm_gateway.hist_add(a bigint[], b bigint[])
RETURNS bigint[]
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'llm_gateway_hist_add';
CREATE FUNCTION llm_gateway.hist_percentile(h bigint[], q float8)
RETURNS float8
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'llm_gateway_hist_percentile';
COMMENT ON FUNCTION llm_gateway.hist_percentile(bigint[], float8) IS
    'The q-th quantile (0..1) of a latency histogram, in ms, within 9%';

-- One row per hour (UTC) and tenant, agent, channel, provider, model and
-- currency.  requests: calls (their first attempt); successes: answered
-- calls; attempts / failed_attempts: every ledger row / those not ok;
-- latencies: of the answered attempts, cached ones apart too.
CREATE TABLE llm_gateway.usage_hourly (
    hour                    timestamptz NOT NULL,
    tenant                  text NOT NULL,
    agent                   text,
    channel                 text,
    provider                text,
    model                   text NOT NULL,
    currency                text,
    requests                bigint NOT NULL DEFAULT 0,
    successes               bigint NOT NULL DEFAULT 0,
    attempts                bigint NOT NULL DEFAULT 0,
    failed_attempts         bigint NOT NULL DEFAULT 0,
    fallbacks               bigint NOT NULL DEFAULT 0,
    cache_hits              bigint NOT NULL DEFAULT 0,
    input_tokens            bigint NOT NULL DEFAULT 0,
    cached_tokens           bigint NOT NULL DEFAULT 0,
    cache_write_tokens      bigint NOT NULL DEFAULT 0,
    reasoning_tokens        bigint NOT NULL DEFAULT 0,
    output_tokens           bigint NOT NULL DEFAULT 0,
    cost_usd                numeric(24, 12) NOT NULL DEFAULT 0,
    cost_local              numeric(24, 12) NOT NULL DEFAULT 0,
    saved_tokens            bigint NOT NULL DEFAULT 0,
    saved_usd               numeric(24, 12) NOT NULL DEFAULT 0,
    saved_local             numeric(24, 12) NOT NULL DEFAULT 0,
    latency_ms_sum          numeric NOT NULL DEFAULT 0,
    latency_count           bigint NOT NULL DEFAULT 0,
    cached_latency_ms_sum   numeric NOT NULL DEFAULT 0,
    cached_latency_count    bigint NOT NULL DEFAULT 0,
    latency_hist            bigint[],
    CONSTRAINT usage_hourly_key
        UNIQUE NULLS NOT DISTINCT (hour, tenant, agent, channel, provider, model, currency)
) WITH (fillfactor = 80);   -- room for HOT updates of the current hour's rows
COMMENT ON TABLE llm_gateway.usage_hourly IS
    'The ledger rolled up per hour, tenant, agent, channel, provider, model';
CREATE INDEX usage_hourly_tenant_hour ON llm_gateway.usage_hourly (tenant, hour);
CREATE INDEX usage_hourly_hour ON llm_gateway.usage_hourly (hour);

-- The same per day, the day being the tenant's (its time zone).
CREATE TABLE llm_gateway.usage_daily (LIKE llm_gateway.usage_hourly INCLUDING DEFAULTS);
ALTER TABLE llm_gateway.usage_daily DROP COLUMN hour;
ALTER TABLE llm_gateway.usage_daily ADD COLUMN day date NOT NULL;
ALTER TABLE llm_gateway.usage_daily SET (fillfactor = 80);
ALTER TABLE llm_gateway.usage_daily ADD CONSTRAINT usage_daily_key
    UNIQUE NULLS NOT DISTINCT (day, tenant, agent, channel, provider, model, currency);
COMMENT ON TABLE llm_gateway.usage_daily IS
    'The ledger rolled up per day (in the tenant''s time zone), tenant, agent, channel, provider, model';
CREATE INDEX usage_daily_tenant_day ON llm_gateway.usage_daily (tenant, day);
CREATE INDEX usage_daily_day ON llm_gateway.usage_daily (day);

-- How far the rollups have read the ledger: every row with id <=
-- rolled_up_to, except the holes.
CREATE TABLE llm_gateway.rollup_state (
    one             boolean PRIMARY KEY DEFAULT true CHECK (one),
    rolled_up_to    bigint NOT NULL DEFAULT 0,
    rows_rolled_up  bigint NOT NULL DEFAULT 0,
    passes          bigint NOT NULL DEFAULT 0,
    last_pass_at    timestamptz
);
COMMENT ON TABLE llm_gateway.rollup_state IS
    'The ledger id up to which usage_hourly and usage_daily are complete (but for rollup_holes)';

-- Ids at or below rolled_up_to whose rows were still in the spend queue at
-- the pass that moved past them (a call whose transaction was open, a row
-- the worker was writing): read by every later pass until written.  At
-- most one per spend-queue slot.
CREATE TABLE llm_gateway.rollup_holes (
    id      bigint PRIMARY KEY,
    since   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE llm_gateway.rollup_holes IS
    'Ledger ids below the rollup watermark not rolled up yet: their rows were not written then';

-- Every budget period that ended, once, with what was spent in it.
CREATE TABLE llm_gateway.budget_periods (
    budget_id       bigint NOT NULL,
    tenant          text NOT NULL,
    agent           text,
    unit            text NOT NULL,
    period          text NOT NULL,
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    limit_value     numeric NOT NULL,
    used            numeric NOT NULL,
    percent         numeric NOT NULL,
    exceeded        boolean NOT NULL,
    closed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (budget_id, tenant, period_start)
);
COMMENT ON TABLE llm_gateway.budget_periods IS
    'Closed budget periods: each period of each budget and tenant, once, with its spend';
CREATE INDEX budget_periods_tenant ON llm_gateway.budget_periods (tenant, period_start);

SELECT pg_catalog.pg_extension_config_dump('llm_gateway.usage_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('llm_gateway.usage_daily', '');
SELECT pg_catalog.pg_extension_config_dump('llm_gateway.rollup_state', '');
SELECT pg_catalog.pg_extension_config_dump('llm_gateway.rollup_holes', '');
SELECT pg_catalog.pg_extension_config_dump('llm_gateway.budget_periods', '');

---------------------------------------------------------------------------
-- The duties (called by the maintenance pass, as the extension's owner)
---------------------------------------------------------------------------

-- Roll up the ledger rows written since the last pass: those with
-- rolled_up_to < id <= upto (at most max_rows of them, in id order) and the
-- holes, but none of the ids still pending in the spend queue (C:
-- lg_spend_pending_ids), which become holes.  Every row is counted exactly
-- once, whenever it commits: a row's id is drawn before its call and the
-- row is either written or in the queue (or never written, once it leaves
-- the queue unwritten).  One pass at a time: with wait false (the worker)
-- a pass already at work is not waited for, and this one reads nothing.
-- Returns the rows read.
CREATE FUNCTION llm_gateway.rollup(upto bigint, pending bigint[], max_rows integer,
                                   wait boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off   -- big estimates, small work: compiling would cost seconds
AS $$
DECLARE
    st llm_gateway.rollup_state;
    hi bigint;
    batch bigint;
    last_id bigint;
    n bigint;
BEGIN
    -- An older snapshot could miss rows committed before the queue was read.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN 0;
    END IF;
    -- the one row (made by the first pass, so that a restore brings its own)
    INSERT INTO llm_gateway.rollup_state DEFAULT VALUES ON CONFLICT DO NOTHING;
    IF wait THEN
        SELECT * INTO st FROM llm_gateway.rollup_state FOR UPDATE;
    ELSE
        -- another pass at work (an llm_maintenance() whose transaction is
        -- still open, say) rolls up; this one does not wait for it
        SELECT * INTO st FROM llm_gateway.rollup_state FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            RETURN 0;
        END IF;
    END IF;
    IF upto <= st.rolled_up_to AND NOT EXISTS (SELECT 1 FROM llm_gateway.rollup_holes) THEN
        RETURN 0;
    END IF;
    -- the batch ends at upto, or at the max_rows-th row past the watermark
    SELECT count(*), max(id) INTO batch, last_id
      FROM (SELECT id FROM llm_gateway.usage
             WHERE id > st.rolled_up_to AND id <= upto
             ORDER BY id LIMIT max_rows) b;
    hi := CASE WHEN batch >= max_rows THEN last_id ELSE greatest(upto, st.rolled_up_to) END;

    WITH raw AS MATERIALIZED (
        SELECT u.*, coalesce(t.timezone, 'UTC') AS tz
          FROM (SELECT * FROM llm_gateway.usage
                 WHERE id > st.rolled_up_to AND id <= hi
                   AND id NOT IN (SELECT unnest(pending))   -- a hashed subplan
                UNION ALL
                SELECT * FROM llm_gateway.usage
                 WHERE id IN (SELECT h.id FROM llm_gateway.rollup_holes h
                               WHERE h.id NOT IN (SELECT unnest(pending)))) u
          LEFT JOIN llm_gateway.tenants t ON t.tenant = u.tenant
    ), facts AS MATERIALIZED (
        SELECT date_trunc('hour', created_at) AS hour,
               (created_at AT TIME ZONE tz)::date AS day,
               tenant, agent, channel, provider, model, currency,
               count(*) FILTER (WHERE attempt = 1) AS requests,
               count(*) FILTER (WHERE status = 'ok') AS successes,
               count(*) AS attempts,
               count(*) FILTER (WHERE status <> 'ok') AS failed_attempts,
               count(*) FILTER (WHERE status = 'ok' AND was_fallback) AS fallbacks,
               count(*) FILTER (WHERE cached) AS cache_hits,
               sum(input_tokens) AS input_tokens, sum(cached_tokens) AS cached_tokens,
               sum(cache_write_tokens) AS cache_write_tokens,
               sum(reasoning_tokens) AS reasoning_tokens, sum(output_tokens) AS output_tokens,
               sum(cost_usd) AS cost_usd, coalesce(sum(cost_local), 0) AS cost_local,
               sum(saved_tokens) AS saved_tokens, sum(saved_usd) AS saved_usd,
               coalesce(sum(saved_usd * exchange_rate), 0) AS saved_local,
               coalesce(sum(latency_ms) FILTER (WHERE status = 'ok'), 0) AS latency_ms_sum,
               count(latency_ms) FILTER (WHERE status = 'ok') AS latency_count,
               coalesce(sum(latency_ms) FILTER (WHERE status = 'ok' AND cached), 0) AS cached_latency_ms_sum,
               count(latency_ms) FILTER (WHERE status = 'ok' AND cached) AS cached_latency_count,
               llm_gateway.latency_hist(latency_ms) FILTER (WHERE status = 'ok') AS latency_hist
          FROM raw
         GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
    ), hourly AS (
        INSERT INTO llm_gateway.usage_hourly AS h
        SELECT hour, tenant, agent, channel, provider, model, currency,
               sum(requests), sum(successes), sum(attempts), sum(failed_attempts),
               sum(fallbacks), sum(cache_hits), sum(input_tokens), sum(cached_tokens),
               sum(cache_write_tokens), sum(reasoning_tokens), sum(output_tokens),
               sum(cost_usd), sum(cost_local), sum(saved_tokens), sum(saved_usd), sum(saved_local),
               sum(latency_ms_sum), sum(latency_count), sum(cached_latency_ms_sum),
               sum(cached_latency_count), llm_gateway.hist_merge(latency_hist)
          FROM facts GROUP BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT ON CONSTRAINT usage_hourly_key DO UPDATE SET
            requests = h.requests + EXCLUDED.requests,
            successes = h.successes + EXCLUDED.successes,
            attempts = h.attempts + EXCLUDED.attempts,
            failed_attempts = h.failed_attempts + EXCLUDED.failed_attempts,
            fallbacks = h.fallbacks + EXCLUDED.fallbacks,
            cache_hits = h.cache_hits + EXCLUDED.cache_hits,
            input_tokens = h.input_tokens + EXCLUDED.input_tokens,
            cached_tokens = h.cached_tokens + EXCLUDED.cached_tokens,
            cache_write_tokens = h.cache_write_tokens + EXCLUDED.cache_write_tokens,
            reasoning_tokens = h.reasoning_tokens + EXCLUDED.reasoning_tokens,
            output_tokens = h.output_tokens + EXCLUDED.output_tokens,
            cost_usd = h.cost_usd + EXCLUDED.cost_usd,
            cost_local = h.cost_local + EXCLUDED.cost_local,
            saved_tokens = h.saved_tokens + EXCLUDED.saved_tokens,
            saved_usd = h.saved_usd + EXCLUDED.saved_usd,
            saved_local = h.saved_local + EXCLUDED.saved_local,
            latency_ms_sum = h.latency_ms_sum + EXCLUDED.latency_ms_sum,
            latency_count = h.latency_count + EXCLUDED.latency_count,
            cached_latency_ms_sum = h.cached_latency_ms_sum + EXCLUDED.cached_latency_ms_sum,
            cached_latency_count = h.cached_latency_count + EXCLUDED.cached_latency_count,
            latency_hist = llm_gateway.hist_add(h.latency_hist, EXCLUDED.latency_hist)
        RETURNING 1
    ), daily AS (
        INSERT INTO llm_gateway.usage_daily AS d
               (tenant, agent, channel, provider, model, currency, requests, successes,
                attempts, failed_attempts, fallbacks, cache_hits, input_tokens, cached_tokens,
                cache_write_tokens, reasoning_tokens, output_tokens, cost_usd, cost_local,
                saved_tokens, saved_usd, saved_local, latency_ms_sum, latency_count, cached_latency_ms_sum,
                cached_latency_count, latency_hist, day)
        SELECT tenant, agent, channel, provider, model, currency,
               sum(requests), sum(successes), sum(attempts), sum(failed_attempts),
               sum(fallbacks), sum(cache_hits), sum(input_tokens), sum(cached_tokens),
               sum(cache_write_tokens), sum(reasoning_tokens), sum(output_tokens),
               sum(cost_usd), sum(cost_local), sum(saved_tokens), sum(saved_usd), sum(saved_local),
               sum(latency_ms_sum), sum(latency_count), sum(cached_latency_ms_sum),
               sum(cached_latency_count), llm_gateway.hist_merge(latency_hist), day
          FROM facts GROUP BY tenant, agent, channel, provider, model, currency, day
        ON CONFLICT ON CONSTRAINT usage_daily_key DO UPDATE SET
            requests = d.requests + EXCLUDED.requests,
            successes = d.successes + EXCLUDED.successes,
            attempts = d.attempts + EXCLUDED.attempts,
            failed_attempts = d.failed_attempts + EXCLUDED.failed_attempts,
            fallbacks = d.fallbacks + EXCLUDED.fallbacks,
            cache_hits = d.cache_hits + EXCLUDED.cache_hits,
            input_tokens = d.input_tokens + EXCLUDED.input_tokens,
            cached_tokens = d.cached_tokens + EXCLUDED.cached_tokens,
            cache_write_tokens = d.cache_write_tokens + EXCLUDED.cache_write_tokens,
            reasoning_tokens = d.reasoning_tokens + EXCLUDED.reasoning_tokens,
            output_tokens = d.output_tokens + EXCLUDED.output_tokens,
            cost_usd = d.cost_usd + EXCLUDED.cost_usd,
            cost_local = d.cost_local + EXCLUDED.cost_local,
            saved_tokens = d.saved_tokens + EXCLUDED.saved_tokens,
            saved_usd = d.saved_usd + EXCLUDED.saved_usd,
            saved_local = d.saved_local + EXCLUDED.saved_local,
            latency_ms_sum = d.latency_ms_sum + EXCLUDED.latency_ms_sum,
            latency_count = d.latency_count + EXCLUDED.latency_count,
            cached_latency_ms_sum = d.cached_latency_ms_sum + EXCLUDED.cached_latency_ms_sum,
            cached_latency_count = d.cached_latency_count + EXCLUDED.cached_latency_count,
            latency_hist = llm_gateway.hist_add(d.latency_hist, EXCLUDED.latency_hist)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM raw) + 0 * (SELECT count(*) FROM hourly)
                                      + 0 * (SELECT count(*) FROM daily)
      INTO n;
    -- a hole out of the queue was read now, or will never be written
    DELETE FROM llm_gateway.rollup_holes WHERE id <> ALL (pending);
    INSERT INTO llm_gateway.rollup_holes (id)
    SELECT p FROM unnest(pending) p WHERE p > st.rolled_up_to AND p <= hi
    ON CONFLICT DO NOTHING;
    UPDATE llm_gateway.rollup_state
       SET rolled_up_to = hi, rows_rolled_up = rows_rolled_up + n,
           passes = passes + 1, last_pass_at = clock_timestamp();
    RETURN n;
END
$$;

-- The ledger's monthly partitions: from the month before "at" to two months
-- after it, creating what is missing (rows of that month waiting in
-- usage_default move in first); and, with keep_months > 0, dropping the
-- partitions that ended keep_months months before at's month.  The DDL
-- needs the ledger to itself for a moment (no insert may be routed while a
-- partition is attached): it takes its lock NOWAIT, so it never makes a
-- call wait; a busy ledger is tried again at the next pass, and partitions
-- are made two months ahead.
-- Returns {"created": [...], "dropped": [...], "skipped": [...]}.
CREATE FUNCTION llm_gateway.maintain_partitions(at timestamptz, keep_months integer)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off   -- big estimates, small work: compiling would cost seconds
SET lock_timeout = '100ms'
AS $$
DECLARE
    m timestamptz;
    name text;
    created text[] := '{}';
    dropped text[] := '{}';
    skipped text[] := '{}';
    p record;
    cutoff timestamptz;
BEGIN
    FOR m IN SELECT generate_series(date_trunc('month', at AT TIME ZONE 'UTC') - interval '1 month',
                                    date_trunc('month', at AT TIME ZONE 'UTC') + interval '2 months',
                                    interval '1 month') AT TIME ZONE 'UTC'
    LOOP
        name := 'usage_' || to_char(m AT TIME ZONE 'UTC', 'YYYY_MM');
        CONTINUE WHEN to_regclass('llm_gateway.' || name) IS NOT NULL;
        BEGIN
            LOCK TABLE llm_gateway.usage IN SHARE ROW EXCLUSIVE MODE NOWAIT;
            EXECUTE format('CREATE TABLE llm_gateway.%I (LIKE llm_gateway.usage INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
            PERFORM llm_gateway.index_partition(('llm_gateway.' || quote_ident(name))::regclass);
            EXECUTE format('WITH moved AS (DELETE FROM llm_gateway.usage_default
                                             WHERE created_at >= %L AND created_at < %L RETURNING *)
                            INSERT INTO llm_gateway.%I SELECT * FROM moved',
                           m, (m AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC', name);
            EXECUTE format('ALTER TABLE llm_gateway.usage ATTACH PARTITION llm_gateway.%I FOR VALUES FROM (%L) TO (%L)',
                           name, m, (m AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC');
            created := created || name;
        EXCEPTION WHEN lock_not_available THEN
            skipped := skipped || name;
        END;
    END LOOP;

    IF keep_months > 0 THEN
        cutoff := (date_trunc('month', at AT TIME ZONE 'UTC') - make_interval(months => keep_months)) AT TIME ZONE 'UTC';
        FOR p IN
            SELECT c.relname,
                   (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper_bound
              FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'llm_gateway.usage'::regclass AND c.relname <> 'usage_default'
        LOOP
            CONTINUE WHEN p.upper_bound > cutoff;
            BEGIN
                LOCK TABLE llm_gateway.usage IN ACCESS EXCLUSIVE MODE NOWAIT;
                EXECUTE format('DROP TABLE llm_gateway.%I', p.relname);
                dropped := dropped || p.relname;
            EXCEPTION WHEN lock_not_available THEN
                skipped := skipped || p.relname;
            END;
        END LOOP;
        BEGIN
            DELETE FROM llm_gateway.usage_default WHERE created_at < cutoff;
        EXCEPTION WHEN lock_not_available THEN
            skipped := skipped || 'usage_default'::text;
        END;
    END IF;
    RETURN jsonb_build_object('created', to_jsonb(created), 'dropped', to_jsonb(dropped),
                              'skipped', to_jsonb(skipped));
END
$$;

-- Close every budget period that ended by "at": one budget_periods row per
-- budget, tenant and period, however many boundaries passed since the last
-- pass (a server down for months catches up).  Expired suspensions are
-- cleared.  wait: as in rollup().  Returns the periods closed.
CREATE FUNCTION llm_gateway.close_periods(at timestamptz, wait boolean DEFAULT true)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off   -- big estimates, small work: compiling would cost seconds
AS $$
DECLARE
    n integer;
BEGIN
    -- one pass at a time; the worker (wait false) does not wait for another
    -- (its inserts would)
    IF wait THEN
        PERFORM pg_advisory_xact_lock(hashtext('llm_gateway'), hashtext('close_periods'));
    ELSIF NOT pg_try_advisory_xact_lock(hashtext('llm_gateway'), hashtext('close_periods')) THEN
        RETURN 0;
    END IF;
    WITH applied AS (
        -- every budget and the tenants it applies to (a plan's: each of its
        -- tenants without a budget of their own in that unit and period)
        SELECT b.id, t.tenant, b.agent, b.unit, b.period, b.amount, t.timezone, b.created_at,
               coalesce(r.rate, 1) AS rate
          FROM llm_gateway.budgets b
          JOIN llm_gateway.tenants t ON t.tenant = b.tenant
                                     OR (b.plan IS NOT NULL AND t.plan = b.plan
                                         AND NOT EXISTS (SELECT 1 FROM llm_gateway.budgets o
                                                          WHERE o.tenant = t.tenant AND o.agent IS NULL
                                                            AND o.unit = b.unit AND o.period = b.period))
          LEFT JOIN llm_gateway.exchange_rates r ON r.currency = upper(b.unit)
         WHERE b.enabled
    ), ended AS (
        -- the periods that ended since the budget began, not closed yet
        SELECT a.*, s AS period_start, s + a.len AS period_end
          FROM (SELECT applied.*,
                       CASE period WHEN 'daily' THEN interval '1 day'
                                   WHEN 'weekly' THEN interval '1 week'
                                   ELSE interval '1 month' END AS len,
                       CASE period WHEN 'daily' THEN 'day' WHEN 'weekly' THEN 'week'
                                   ELSE 'month' END AS field
                  FROM applied) a
          CROSS JOIN LATERAL generate_series(
                   greatest(date_trunc(a.field, a.created_at AT TIME ZONE a.timezone),
                            coalesce((SELECT max(p.period_end) AT TIME ZONE a.timezone
                                        FROM llm_gateway.budget_periods p
                                       WHERE p.budget_id = a.id AND p.tenant = a.tenant),
                                     '-infinity')),
                   date_trunc(a.field, at AT TIME ZONE a.timezone) - a.len,
                   a.len) AS s
    ), spent AS (
        SELECT e.*, (e.period_start AT TIME ZONE e.timezone) AS ps,
               (e.period_end AT TIME ZONE e.timezone) AS pe,
               (SELECT CASE e.unit
                         WHEN 'usd' THEN coalesce(sum(u.cost_usd), 0)
                         WHEN 'tokens' THEN coalesce(sum(u.input_tokens + u.output_tokens), 0)
                         WHEN 'requests' THEN count(DISTINCT u.request_id)
                         ELSE coalesce(sum(CASE WHEN u.currency = upper(e.unit) THEN u.cost_local
                                                ELSE u.cost_usd * e.rate END), 0) END
                  FROM llm_gateway.usage u
                 WHERE u.tenant = e.tenant AND (e.agent IS NULL OR u.agent = e.agent)
                   AND u.created_at >= (e.period_start AT TIME ZONE e.timezone)
                   AND u.created_at < (e.period_end AT TIME ZONE e.timezone)) AS used
          FROM ended e
    ), closed AS (
        INSERT INTO llm_gateway.budget_periods
               (budget_id, tenant, agent, unit, period, period_start, period_end,
                limit_value, used, percent, exceeded, closed_at)
        SELECT id, tenant, agent, unit, period, ps, pe, amount, used,
               round(100 * used / amount, 2), used >= amount, at
          FROM spent
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT count(*) INTO n FROM closed;
    UPDATE llm_gateway.tenants
       SET suspended_until = NULL, suspended_reason = NULL
     WHERE suspended_until <= at;
    RETURN n;
END
$$;
