-- llm_gateway install script, part 45_analytics.sql (see 00_schema.sql)

---------------------------------------------------------------------------
-- Analytics: llm_usage_summary, llm_usage_export and the dashboard views.
-- They run with the caller's rights: row-level security shows a member its
-- own tenants only, an administrator every tenant.
---------------------------------------------------------------------------

-- Refuse a tenant the caller may not act for (42501), or that does not
-- exist (LG001): C, because it must see the caller (isolation.c).
CREATE FUNCTION llm_gateway.require_tenant(tenant text)
RETURNS void
LANGUAGE C VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'llm_gateway_require_tenant';

-- The ledger in the shape of the rollups, for [s, e), from the coarsest
-- source that is exact: for one tenant, its whole local days from
-- usage_daily; whole hours from usage_hourly; the rest (partial hours, and
-- rows not rolled up yet: past the watermark or in its holes) from the
-- ledger itself.  So a month costs about thirty rows per combination of
-- agent, channel and model, however big the ledger.  Days are used only
-- when they start on whole hours (not in zones such as Asia/Kolkata) and
-- after the tenant's time zone last changed (older days were rolled up in
-- the old zone).  Each query is planned for its values (force_custom_plan):
-- the tenant's index, only the partitions in range, no branch for what is
-- empty.  "at" is the start of the row's hour or local day, or the row's
-- own time.
CREATE FUNCTION llm_gateway.usage_facts(t_id text, s timestamptz, e timestamptz)
RETURNS TABLE (at timestamptz, tenant text, agent text, channel text, provider text,
               model text, currency text, requests bigint, successes bigint,
               attempts bigint, failed_attempts bigint, fallbacks bigint, cache_hits bigint,
               input_tokens bigint, cached_tokens bigint, cache_write_tokens bigint,
               reasoning_tokens bigint, output_tokens bigint, cost_usd numeric,
               cost_local numeric, saved_tokens bigint, saved_usd numeric, saved_local numeric,
               latency_ms_sum numeric, latency_count bigint,
               cached_latency_ms_sum numeric, cached_latency_count bigint,
               latency_hist bigint[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off   -- big estimates, small work: compiling would cost seconds
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    -- whole hours [hs, he) come from the rollups, whole days [ds, de) of
    -- them from usage_daily
    hs timestamptz := CASE WHEN date_trunc('hour', s) = s THEN s
                           ELSE date_trunc('hour', s) + interval '1 hour' END;
    he timestamptz := greatest(date_trunc('hour', e), hs);
    ds timestamptz;
    de timestamptz;
    tz text;
    since timestamptz;
    wm bigint := coalesce((SELECT rolled_up_to FROM llm_gateway.rollup_state), 0);
    holes bigint[] := ARRAY(SELECT id FROM llm_gateway.rollup_holes);
BEGIN
    IF hs >= e THEN   -- not one whole hour: everything from the ledger
        hs := e;
        he := e;
    END IF;
    ds := he;
    de := he;
    IF t_id IS NOT NULL THEN
        SELECT t.timezone, t.timezone_since INTO tz, since
          FROM llm_gateway.tenants t WHERE t.tenant = t_id;
    END IF;
    IF tz IS NOT NULL THEN
        -- the first local midnight at or after hs (and a day after the
        -- zone changed), the last one at or before he
        ds := date_trunc('day', greatest(hs, since + interval '1 day') AT TIME ZONE tz)
              AT TIME ZONE tz;
        IF ds < greatest(hs, since + interval '1 day') THEN
            ds := (date_trunc('day', greatest(hs, since + interval '1 day') AT TIME ZONE tz)
                   + interval '1 day') AT TIME ZONE tz;
        END IF;
        de := date_trunc('day', he AT TIME ZONE tz) AT TIME ZONE tz;
        IF ds >= de OR date_trunc('hour', ds) <> ds OR date_trunc('hour', de) <> de THEN
            ds := he;
            de := he;
        END IF;
    END IF;
    RETURN QUERY
    SELECT d.day::timestamp AT TIME ZONE tz, d.tenant, d.agent, d.channel, d.provider,
           d.model, d.currency,
           d.requests, d.successes, d.attempts, d.failed_attempts, d.fallbacks,
           d.cache_hits, d.input_tokens, d.cached_tokens, d.cache_write_tokens,
           d.reasoning_tokens, d.output_tokens, d.cost_usd, d.cost_local, d.saved_tokens,
           d.saved_usd, d.saved_local, d.latency_ms_sum, d.latency_count,
           d.cached_latency_ms_sum, d.cached_latency_count, d.latency_hist
      FROM llm_gateway.usage_daily d
     WHERE ds < de AND d.tenant = t_id
       AND d.day >= (ds AT TIME ZONE tz)::date AND d.day < (de AT TIME ZONE tz)::date
    UNION ALL
    SELECT h.hour, h.tenant, h.agent, h.channel, h.provider, h.model, h.currency,
           h.requests, h.successes, h.attempts, h.failed_attempts, h.fallbacks,
           h.cache_hits, h.input_tokens, h.cached_tokens, h.cache_write_tokens,
           h.reasoning_tokens, h.output_tokens, h.cost_usd, h.cost_local, h.saved_tokens,
           h.saved_usd, h.saved_local, h.latency_ms_sum, h.latency_count,
           h.cached_latency_ms_sum, h.cached_latency_count, h.latency_hist
      FROM llm_gateway.usage_hourly h
     WHERE (t_id IS NULL OR h.tenant = t_id)
       AND ((h.hour >= hs AND h.hour < ds) OR (h.hour >= de AND h.hour < he))
    UNION ALL
    SELECT r.created_at, r.tenant, r.agent, r.channel, r.provider, r.model, r.currency,
           (r.attempt = 1)::int::bigint, (r.status = 'ok')::int::bigint, 1::bigint,
           (r.status <> 'ok')::int::bigint, (r.status = 'ok' AND r.was_fallback)::int::bigint,
           r.cached::int::bigint,
           r.input_tokens, r.cached_tokens, r.cache_write_tokens, r.reasoning_tokens,
           r.output_tokens, r.cost_usd, coalesce(r.cost_local, 0), r.saved_tokens,
           r.saved_usd, coalesce(r.saved_usd * r.exchange_rate, 0),
           CASE WHEN r.status = 'ok' THEN coalesce(r.latency_ms, 0) ELSE 0 END,
           (r.status = 'ok' AND r.latency_ms IS NOT NULL)::int::bigint,
           CASE WHEN r.status = 'ok' AND r.cached THEN coalesce(r.latency_ms, 0) ELSE 0 END,
           (r.status = 'ok' AND r.cached AND r.latency_ms IS NOT NULL)::int::bigint,
           CASE WHEN r.status = 'ok' THEN llm_gateway.hist_of(r.latency_ms) END
      FROM (-- the partial hour at the start, the one at the end
            SELECT u.* FROM llm_gateway.usage u
             WHERE (t_id IS NULL OR u.tenant = t_id) AND u.created_at >= s AND u.created_at < hs
            UNION ALL
            SELECT u.* FROM llm_gateway.usage u
             WHERE (t_id IS NULL OR u.tenant = t_id) AND u.created_at >= he AND u.created_at < e
            UNION ALL
            -- the rolled-up span's rows not rolled up yet
            SELECT u.* FROM llm_gateway.usage u
             WHERE u.id > wm AND (t_id IS NULL OR u.tenant = t_id)
               AND u.created_at >= hs AND u.created_at < he
            UNION ALL
            SELECT u.* FROM llm_gateway.usage u
             WHERE cardinality(holes) > 0 AND u.id = ANY (holes) AND u.id <= wm
               AND (t_id IS NULL OR u.tenant = t_id)
               AND u.created_at >= hs AND u.created_at < he) r;
END
$$;

-- One breakdown of usage_facts rows (by model, agent, ...): a jsonb object
-- keyed by the dimension's value.
CREATE FUNCTION llm_gateway.breakdown_entry(requests numeric, successes numeric,
                                            attempts numeric, failed_attempts numeric,
                                            input_tokens numeric, output_tokens numeric,
                                            cost_usd numeric, cost_local numeric,
                                            latency_ms_sum numeric, latency_count numeric,
                                            with_local boolean)
RETURNS jsonb
LANGUAGE sql IMMUTABLE   -- no SET: inlined into its caller's query
AS $$
    SELECT jsonb_build_object(
        'requests', requests, 'successes', successes, 'attempts', attempts,
        'failed_attempts', failed_attempts, 'tokens', input_tokens + output_tokens,
        'input_tokens', input_tokens, 'output_tokens', output_tokens,
        'cost_usd', cost_usd, 'cost', CASE WHEN with_local THEN cost_local END,
        'avg_latency_ms', round(latency_ms_sum / nullif(latency_count, 0), 3))
$$;

-- Percent change from old to new (NULL when there was nothing before).
CREATE FUNCTION llm_gateway.pct_change(new numeric, old numeric)
RETURNS numeric
LANGUAGE sql IMMUTABLE   -- no SET: inlined into its caller's query
AS $$
    SELECT round(100 * (new - old) / nullif(old, 0), 2)
$$;

-- The window a summary covers, and the one its trends compare with: for
-- today/week/month, the calendar period in the tenant's time zone and the
-- same stretch of the period before (month to date against last month to
-- the same day and hour); for custom or explicit bounds, the window of the
-- same length just before.
CREATE FUNCTION llm_gateway.summary_window(p text, tz text, start_at timestamptz,
                                           end_at timestamptz,
                                           OUT s timestamptz, OUT e timestamptz,
                                           OUT prev_s timestamptz, OUT prev_e timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    field text := CASE p WHEN 'today' THEN 'day' WHEN 'day' THEN 'day' WHEN 'week' THEN 'week'
                         WHEN 'month' THEN 'month' END;
    len interval := CASE p WHEN 'week' THEN interval '1 week' WHEN 'month' THEN interval '1 month'
                           ELSE interval '1 day' END;
    local_now timestamp := now() AT TIME ZONE tz;
BEGIN
    IF field IS NULL AND p <> 'custom' THEN
        RAISE EXCEPTION USING ERRCODE = 'LG011',
            MESSAGE = format('unknown period "%s"', left(p, 64)),
            HINT = 'Periods are today, week, month (in the tenant''s time zone) and custom (with start_at and end_at).';
    END IF;
    IF field IS NOT NULL THEN
        s := date_trunc(field, local_now) AT TIME ZONE tz;
        e := (date_trunc(field, local_now) + len) AT TIME ZONE tz;
        prev_s := (date_trunc(field, local_now) - len) AT TIME ZONE tz;
        prev_e := least((local_now - len) AT TIME ZONE tz, s);
    END IF;
    IF start_at IS NOT NULL OR end_at IS NOT NULL THEN
        s := coalesce(start_at, s);
        e := coalesce(end_at, e);
        IF s IS NULL OR e IS NULL OR e <= s THEN
            RAISE EXCEPTION USING ERRCODE = 'LG011',
                MESSAGE = 'a custom period needs start_at before end_at',
                HINT = 'Pass both bounds, start_at earlier than end_at; end_at is excluded.';
        END IF;
        prev_s := s - (e - s);
        prev_e := s;
    END IF;
    IF s IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LG011',
            MESSAGE = 'a custom period needs start_at before end_at',
            HINT = 'Pass both bounds, start_at earlier than end_at; end_at is excluded.';
    END IF;
END
$$;

CREATE FUNCTION @extschema@.llm_usage_summary(tenant text, period text DEFAULT 'month',
                                              start_at timestamptz DEFAULT NULL,
                                              end_at timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off   -- big estimates, small work: compiling would cost seconds
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    t_id text := llm_usage_summary.tenant;
    p text := lower(coalesce(llm_usage_summary.period, 'month'));
    tz text := 'UTC';
    cur text;
    w record;
    local boolean := t_id IS NOT NULL;
    budget jsonb;
    prev record;
    result jsonb;
BEGIN
    IF t_id IS NOT NULL THEN
        PERFORM llm_gateway.require_tenant(t_id);
        SELECT t.timezone, t.currency INTO tz, cur FROM llm_gateway.tenants t WHERE t.tenant = t_id;
    END IF;
    w := llm_gateway.summary_window(p, tz, start_at, end_at);

    -- the budget of the current period (the one of the summary's length first)
    IF t_id IS NOT NULL THEN
        SELECT jsonb_build_object('budget_id', b -> 'budget_id', 'unit', b ->> 'unit',
                                  'period', b ->> 'period', 'limit', b -> 'limit',
                                  'used', b -> 'used', 'reserved', b -> 'reserved',
                                  'remaining', b -> 'remaining', 'percent', b -> 'percent',
                                  'projection', b -> 'projection',
                                  'projected_percent', b -> 'projected_percent',
                                  'period_start', b -> 'period_start',
                                  'period_end', b -> 'period_end', 'state', b ->> 'state')
          INTO budget
          FROM jsonb_array_elements(@extschema@.llm_budget_status(t_id) -> 'budgets') b
         WHERE b ->> 'kind' = 'budget' AND b ->> 'scope' <> 'agent'
         ORDER BY (b ->> 'period') = CASE p WHEN 'week' THEN 'weekly' WHEN 'month' THEN 'monthly'
                                            WHEN 'custom' THEN 'monthly' ELSE 'daily' END DESC,
                  (b ->> 'unit') NOT IN ('tokens', 'requests') DESC
         LIMIT 1;
    END IF;

    SELECT coalesce(sum(f.requests), 0) AS requests,
           coalesce(sum(f.input_tokens + f.output_tokens), 0) AS tokens,
           coalesce(sum(f.cost_usd), 0) AS cost_usd, coalesce(sum(f.cost_local), 0) AS cost_local
      INTO prev
      FROM llm_gateway.usage_facts(t_id, w.prev_s, w.prev_e) f;

    WITH f AS MATERIALIZED (
        SELECT * FROM llm_gateway.usage_facts(t_id, w.s, w.e)
    ), totals AS (
        SELECT coalesce(sum(requests), 0) AS requests, coalesce(sum(successes), 0) AS successes,
               coalesce(sum(attempts), 0) AS attempts,
               coalesce(sum(failed_attempts), 0) AS failed_attempts,
               coalesce(sum(fallbacks), 0) AS fallbacks,
               coalesce(sum(cache_hits), 0) AS hits,
               coalesce(sum(input_tokens), 0) AS input_tokens,
               coalesce(sum(output_tokens), 0) AS output_tokens,
               coalesce(sum(cached_tokens), 0) AS cached_tokens,
               coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens,
               coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
               coalesce(sum(cost_usd), 0) AS cost_usd, coalesce(sum(cost_local), 0) AS cost_local,
               coalesce(sum(saved_tokens), 0) AS saved_tokens,
               coalesce(sum(saved_usd), 0) AS saved_usd,
               coalesce(sum(saved_local), 0) AS saved_local,
               sum(latency_ms_sum) AS latency_sum, sum(latency_count) AS latency_count,
               sum(cached_latency_ms_sum) AS cached_sum,
               sum(cached_latency_count) AS cached_count,
               llm_gateway.hist_merge(latency_hist) AS hist
          FROM f
    ), combos AS (
        -- one row per agent, channel, provider and model: the breakdowns' input
        SELECT agent, channel, provider, model, sum(requests) AS requests,
               sum(successes) AS successes, sum(attempts) AS attempts,
               sum(failed_attempts) AS failed_attempts, sum(input_tokens) AS input_tokens,
               sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd,
               sum(cost_local) AS cost_local, sum(latency_ms_sum) AS latency_ms_sum,
               sum(latency_count) AS latency_count
          FROM f GROUP BY 1, 2, 3, 4
    ), dims AS (
        SELECT 'model' AS dim, model AS k, c.* FROM combos c
        UNION ALL SELECT 'agent', coalesce(agent, '(none)'), c.* FROM combos c
        UNION ALL SELECT 'channel', coalesce(channel, '(none)'), c.* FROM combos c
        UNION ALL SELECT 'provider', coalesce(provider, '(none)'), c.* FROM combos c
    ), breakdowns AS (
        SELECT dim, jsonb_object_agg(k, llm_gateway.breakdown_entry(
                   requests, successes, attempts, failed_attempts, input_tokens, output_tokens,
                   cost_usd, cost_local, latency_ms_sum, latency_count, local) ORDER BY k) AS o
          FROM (SELECT dim, k, sum(requests) AS requests, sum(successes) AS successes,
                       sum(attempts) AS attempts, sum(failed_attempts) AS failed_attempts,
                       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                       sum(cost_usd) AS cost_usd, sum(cost_local) AS cost_local,
                       sum(latency_ms_sum) AS latency_ms_sum, sum(latency_count) AS latency_count
                  FROM dims GROUP BY 1, 2) g
         GROUP BY dim
    ), days AS (
        -- every day of the window up to today, with or without usage
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'date', coalesce(d.day, g.day), 'requests', coalesce(d.requests, 0),
                   'errors', coalesce(d.requests - d.successes, 0),
                   'tokens', coalesce(d.tokens, 0), 'cost_usd', coalesce(d.cost_usd, 0),
                   'cost', CASE WHEN local THEN coalesce(d.cost_local, 0) END)
                   ORDER BY coalesce(d.day, g.day)), '[]') AS a
          FROM (SELECT generate_series((w.s AT TIME ZONE tz)::date,
                                       ((least(w.e, greatest(now(), w.s + interval '1 microsecond'))
                                         - interval '1 microsecond') AT TIME ZONE tz)::date,
                                       interval '1 day')::date AS day) g
          FULL JOIN (SELECT (at AT TIME ZONE tz)::date AS day, sum(requests) AS requests,
                            sum(successes) AS successes,
                            sum(input_tokens + output_tokens) AS tokens,
                            sum(cost_usd) AS cost_usd, sum(cost_local) AS cost_local
                       FROM f GROUP BY 1) d ON d.day = g.day
    )
    SELECT jsonb_build_object(
               'tenant', t_id,
               'currency', cur,
               'period', jsonb_build_object('name', p, 'start', w.s, 'end', w.e, 'timezone', tz),
               'totals', jsonb_build_object(
                   'requests', t.requests, 'successes', t.successes,
                   'errors', t.requests - t.successes,
                   'success_rate', CASE WHEN t.requests > 0
                                        THEN round(t.successes::numeric / t.requests, 4) ELSE 1 END,
                   'attempts', t.attempts, 'failed_attempts', t.failed_attempts,
                   'fallbacks', t.fallbacks,
                   'tokens', t.input_tokens + t.output_tokens,
                   'input_tokens', t.input_tokens, 'output_tokens', t.output_tokens,
                   'cached_tokens', t.cached_tokens, 'cache_write_tokens', t.cache_write_tokens,
                   'reasoning_tokens', t.reasoning_tokens,
                   'cost_usd', t.cost_usd,
                   'cost', CASE WHEN local THEN t.cost_local END,
                   'avg_latency_ms', round(t.latency_sum / nullif(t.latency_count, 0), 3),
                   'p50_latency_ms', round(llm_gateway.hist_percentile(t.hist, 0.5)::numeric, 3),
                   'p95_latency_ms', round(llm_gateway.hist_percentile(t.hist, 0.95)::numeric, 3),
                   'p99_latency_ms', round(llm_gateway.hist_percentile(t.hist, 0.99)::numeric, 3)),
               'cache', jsonb_build_object(
                   'hits', t.hits, 'misses', t.requests - t.hits,
                   'hit_rate', CASE WHEN t.requests > 0
                                    THEN round(t.hits::numeric / t.requests, 4) ELSE 0 END,
                   'saved_tokens', t.saved_tokens, 'saved_usd', t.saved_usd,
                   'saved', CASE WHEN local THEN t.saved_local END,
                   'avg_latency_cached_ms', round(t.cached_sum / nullif(t.cached_count, 0), 3),
                   'avg_latency_uncached_ms', round((t.latency_sum - t.cached_sum)
                                                    / nullif(t.latency_count - t.cached_count, 0), 3)),
               'trends', jsonb_build_object(
                   'previous', jsonb_build_object('start', w.prev_s, 'end', w.prev_e,
                                                  'requests', prev.requests, 'tokens', prev.tokens,
                                                  'cost_usd', prev.cost_usd,
                                                  'cost', CASE WHEN local THEN prev.cost_local END),
                   'requests_pct', llm_gateway.pct_change(t.requests, prev.requests),
                   'tokens_pct', llm_gateway.pct_change(t.input_tokens + t.output_tokens, prev.tokens),
                   'cost_pct', llm_gateway.pct_change(t.cost_usd, prev.cost_usd)),
               'budget', budget,
               'by_model', coalesce((SELECT o FROM breakdowns WHERE dim = 'model'), '{}'),
               'by_agent', coalesce((SELECT o FROM breakdowns WHERE dim = 'agent'), '{}'),
               'by_channel', coalesce((SELECT o FROM breakdowns WHERE dim = 'channel'), '{}'),
               'by_provider', coalesce((SELECT o FROM breakdowns WHERE dim = 'provider'), '{}'),
               'by_day', (SELECT a FROM days))
      INTO result
      FROM totals t;
    RETURN result;
END
$$;
COMMENT ON FUNCTION @extschema@.llm_usage_summary(text, text, timestamptz, timestamptz) IS
    'Usage of a tenant (NULL: every tenant you may see) over today, week, month or a custom range';

-- A CSV field: quoted when it must be.
CREATE FUNCTION llm_gateway.csv(v text)
RETURNS text
LANGUAGE sql IMMUTABLE   -- no SET: inlined into its caller's query
AS $$
    SELECT CASE WHEN v IS NULL THEN ''
                WHEN v ~ '[",\r\n]' THEN '"' || replace(v, '"', '""') || '"'
                ELSE v END
$$;

CREATE FUNCTION @extschema@.llm_usage_export(tenant text, start_at timestamptz,
                                             end_at timestamptz, format text DEFAULT 'csv')
RETURNS SETOF text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off   -- big estimates, small work: compiling would cost seconds
AS $$
DECLARE
    t_id text := llm_usage_export.tenant;
    f text := lower(coalesce(llm_usage_export.format, 'csv'));
BEGIN
    IF t_id IS NOT NULL THEN
        PERFORM llm_gateway.require_tenant(t_id);
    END IF;
    IF f NOT IN ('csv', 'json') THEN
        RAISE EXCEPTION USING ERRCODE = 'LG011',
            MESSAGE = format('unknown export format "%s"', left(f, 64)),
            HINT = 'Formats are csv (a header line, then a line per ledger row) and json (a JSON object per line).';
    END IF;
    IF start_at IS NULL OR end_at IS NULL OR end_at <= start_at THEN
        RAISE EXCEPTION USING ERRCODE = 'LG011',
            MESSAGE = 'an export needs start_at before end_at';
    END IF;
    IF f = 'csv' THEN
        RETURN NEXT 'id,created_at,request_id,attempt,tenant,agent,channel,session_id,'
                    'conversation_id,requested_model,model,provider,status,error_code,'
                    'input_tokens,cached_tokens,cache_write_tokens,reasoning_tokens,'
                    'output_tokens,cost_usd,currency,exchange_rate,cost_local,latency_ms,'
                    'cached,was_fallback,over_budget,downgraded_from,metadata';
        RETURN QUERY
        SELECT concat_ws(',', u.id, llm_gateway.csv(to_char(u.created_at AT TIME ZONE 'UTC',
                                                            'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
                         u.request_id, u.attempt, llm_gateway.csv(u.tenant),
                         llm_gateway.csv(u.agent), llm_gateway.csv(u.channel),
                         llm_gateway.csv(u.session_id), llm_gateway.csv(u.conversation_id),
                         llm_gateway.csv(u.requested_model), llm_gateway.csv(u.model),
                         llm_gateway.csv(u.provider), u.status, llm_gateway.csv(u.error_code),
                         u.input_tokens, u.cached_tokens, u.cache_write_tokens,
                         u.reasoning_tokens, u.output_tokens, u.cost_usd,
                         llm_gateway.csv(u.currency), llm_gateway.csv(u.exchange_rate::text),
                         llm_gateway.csv(u.cost_local::text), llm_gateway.csv(u.latency_ms::text),
                         u.cached, u.was_fallback, u.over_budget,
                         llm_gateway.csv(u.downgraded_from), llm_gateway.csv(u.metadata::text))
          FROM llm_gateway.usage u
         WHERE (t_id IS NULL OR u.tenant = t_id)
           AND u.created_at >= start_at AND u.created_at < end_at
         ORDER BY u.created_at, u.id;
    ELSE
        RETURN QUERY
        SELECT (to_jsonb(u) - 'error' - 'written_by')::text
          FROM llm_gateway.usage u
         WHERE (t_id IS NULL OR u.tenant = t_id)
           AND u.created_at >= start_at AND u.created_at < end_at
         ORDER BY u.created_at, u.id;
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.llm_usage_export(text, timestamptz, timestamptz, text) IS
    'A tenant''s ledger rows in [start_at, end_at): CSV lines (with a header) or JSON lines';

---------------------------------------------------------------------------
-- Dashboard views: over the rollups (current to the last worker pass), with
-- the reader's rights (security_invoker), so members see their tenants only.
---------------------------------------------------------------------------

CREATE VIEW llm_gateway.usage_by_tenant WITH (security_invoker = true) AS
SELECT day, tenant, currency, sum(requests) AS requests, sum(successes) AS successes,
       sum(input_tokens + output_tokens) AS tokens, sum(cost_usd) AS cost_usd,
       sum(cost_local) AS cost_local, sum(cache_hits) AS cache_hits
  FROM llm_gateway.usage_daily
 GROUP BY day, tenant, currency;
COMMENT ON VIEW llm_gateway.usage_by_tenant IS 'Per day and tenant (organisation): requests, tokens, cost';

CREATE VIEW llm_gateway.cost_by_provider WITH (security_invoker = true) AS
SELECT day, provider, sum(attempts) AS attempts, sum(requests) AS requests,
       sum(input_tokens + output_tokens) AS tokens, sum(cost_usd) AS cost_usd
  FROM llm_gateway.usage_daily
 GROUP BY day, provider;
COMMENT ON VIEW llm_gateway.cost_by_provider IS 'Per day and provider: attempts, tokens, cost';

CREATE VIEW llm_gateway.model_performance WITH (security_invoker = true) AS
SELECT day, model, provider, sum(attempts) AS attempts, sum(failed_attempts) AS failed_attempts,
       round(sum(failed_attempts)::numeric / nullif(sum(attempts), 0), 4) AS error_rate,
       round(sum(latency_ms_sum) / nullif(sum(latency_count), 0), 3) AS avg_latency_ms,
       round(llm_gateway.hist_percentile(llm_gateway.hist_merge(latency_hist), 0.5)::numeric, 3) AS p50_latency_ms,
       round(llm_gateway.hist_percentile(llm_gateway.hist_merge(latency_hist), 0.95)::numeric, 3) AS p95_latency_ms,
       round(llm_gateway.hist_percentile(llm_gateway.hist_merge(latency_hist), 0.99)::numeric, 3) AS p99_latency_ms
  FROM llm_gateway.usage_daily
 GROUP BY day, model, provider;
COMMENT ON VIEW llm_gateway.model_performance IS
    'Per day, model and provider: attempts, error rate, p50/p95/p99 latency of the answers';

CREATE VIEW llm_gateway.error_rate_hourly WITH (security_invoker = true) AS
SELECT hour, provider, sum(attempts) AS attempts, sum(failed_attempts) AS failed_attempts,
       round(sum(failed_attempts)::numeric / nullif(sum(attempts), 0), 4) AS error_rate
  FROM llm_gateway.usage_hourly
 GROUP BY hour, provider;
COMMENT ON VIEW llm_gateway.error_rate_hourly IS 'Per hour and provider: attempts and the share that failed';

CREATE VIEW llm_gateway.popular_models WITH (security_invoker = true) AS
SELECT model, sum(requests) AS requests, sum(input_tokens + output_tokens) AS tokens,
       sum(cost_usd) AS cost_usd,
       rank() OVER (ORDER BY sum(requests) DESC) AS rank
  FROM llm_gateway.usage_daily
 WHERE day >= current_date - 30
 GROUP BY model;
COMMENT ON VIEW llm_gateway.popular_models IS 'The models by requests over the last 30 days';

CREATE VIEW llm_gateway.cache_stats_hourly WITH (security_invoker = true) AS
SELECT hour, tenant, sum(requests) AS requests, sum(cache_hits) AS cache_hits,
       sum(requests) - sum(cache_hits) AS cache_misses,
       round(100 * sum(cache_hits)::numeric / nullif(sum(requests), 0), 2) AS cache_hit_rate,
       sum(saved_tokens) AS tokens_saved, sum(saved_usd) AS cost_saved_usd,
       sum(saved_local) AS cost_saved_local,
       round(sum(cached_latency_ms_sum) / nullif(sum(cached_latency_count), 0), 3)
           AS avg_latency_cached_ms,
       round((sum(latency_ms_sum) - sum(cached_latency_ms_sum))
             / nullif(sum(latency_count) - sum(cached_latency_count), 0), 3)
           AS avg_latency_uncached_ms,
       round(100 * (1 - (sum(cached_latency_ms_sum) / nullif(sum(cached_latency_count), 0))
                      / nullif((sum(latency_ms_sum) - sum(cached_latency_ms_sum))
                               / nullif(sum(latency_count) - sum(cached_latency_count), 0), 0)), 2)
           AS latency_improvement_pct
  FROM llm_gateway.usage_hourly
 GROUP BY hour, tenant;
COMMENT ON VIEW llm_gateway.cache_stats_hourly IS
    'Per hour and tenant: cache hits, misses, hit rate, tokens and cost saved, latency cached vs not';

CREATE VIEW llm_gateway.recent_alerts WITH (security_invoker = true) AS
SELECT id, created_at, type, tenant, agent, provider, threshold, percent, message,
       acknowledged_at, acknowledged_by
  FROM llm_gateway.alerts
 WHERE created_at > now() - interval '7 days'
 ORDER BY created_at DESC, id DESC;
COMMENT ON VIEW llm_gateway.recent_alerts IS 'The alerts of the last 7 days, newest first';

CREATE VIEW llm_gateway.provider_status_history WITH (security_invoker = true) AS
SELECT provider, at, from_status, to_status, reason,
       lead(at) OVER (PARTITION BY provider ORDER BY at, id) - at AS lasted
  FROM llm_gateway.provider_events;
COMMENT ON VIEW llm_gateway.provider_status_history IS
    'Every provider status change and how long the new status lasted (administrators)';
