-- analytics: rollups equal to the ledger across passes and late rows, the
-- usage summary of a known data set, dashboard views, export, budget
-- periods closed once at the boundary and caught up, thresholds swept,
-- counters reconciled, and retention (last: it drops this month's rows).
\set SHOW_CONTEXT never
\set VERBOSITY terse

-- A known data set for tenant "ana" (São Paulo, UTC-3, billing in BRL),
-- written straight into the ledger at fixed times in January 2026.
CREATE ROLE lg_ana_member;
SELECT llm_tenant_set('ana', '{"members": ["lg_ana_member"], "timezone": "America/Sao_Paulo",
                               "currency": "BRL"}') ->> 'tenant';
CREATE FUNCTION ana_row(at timestamptz, agent text, channel text, provider text, model text,
                        status text, attempt int, cached bool, fallback bool,
                        input bigint, output bigint, cost numeric, latency numeric,
                        saved bigint DEFAULT 0, saved_usd numeric DEFAULT 0)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO llm_gateway.usage (created_at, request_id, attempt, tenant, agent, channel,
        model, provider, status, input_tokens, output_tokens, cost_usd, latency_ms, cached,
        was_fallback, currency, exchange_rate, rate_source, cost_local, saved_tokens, saved_usd)
    VALUES (at, md5(at::text || attempt)::uuid, attempt, 'ana', agent, channel, model, provider,
            status, input, output, cost, latency, cached, fallback, 'BRL', 5, 'fallback',
            cost * 5, saved, saved_usd)
$$;
-- Facts from the ledger, grouped like the rollups, to compare with them.
CREATE VIEW ana_ledger AS
SELECT date_trunc('hour', created_at) AS hour, agent, channel, provider, model,
       count(*) FILTER (WHERE attempt = 1) AS requests, count(*) FILTER (WHERE status = 'ok') AS successes,
       count(*) AS attempts, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
       sum(cost_usd) AS cost_usd, sum(cost_local) AS cost_local,
       coalesce(sum(latency_ms) FILTER (WHERE status = 'ok'), 0) AS latency_ms_sum
  FROM llm_gateway.usage WHERE tenant = 'ana' GROUP BY 1, 2, 3, 4, 5;
CREATE VIEW ana_rollup AS
SELECT hour, agent, channel, provider, model, requests, successes, attempts, input_tokens,
       output_tokens, cost_usd, cost_local, latency_ms_sum
  FROM llm_gateway.usage_hourly WHERE tenant = 'ana';

-- pass 1: three rows (a call answered; a call that failed over to groq)
SELECT ana_row('2026-01-10 12:10:00+00', 'lobo', 'whatsapp', 'openai', 'openai/gpt-4o-mini', 'ok', 1, false, false, 100, 50, 0.000045, 400);
SELECT ana_row('2026-01-10 12:20:00+00', 'lobo', 'whatsapp', 'openai', 'openai/gpt-4o-mini', 'error', 1, false, false, 100, 0, 0, 300);
SELECT ana_row('2026-01-10 12:20:01+00', 'lobo', 'whatsapp', 'groq', 'groq/llama-3.3-70b-versatile', 'ok', 2, false, true, 100, 40, 0.000091, 250);
SELECT (llm_maintenance() -> 'rolled_up')::int > 0 AS rolled_up;
-- pass 2: a cache hit, and a call late in the local evening (the next UTC day)
SELECT ana_row('2026-01-10 13:05:00+00', 'aguia', 'web', 'openai', 'openai/gpt-4o-mini', 'ok', 1, true, false, 0, 0, 0, 2, 150, 0.000045);
SELECT ana_row('2026-01-11 02:30:00+00', 'aguia', 'web', 'anthropic', 'anthropic/claude-sonnet-4-20250514', 'ok', 1, false, false, 200, 100, 0.0021, 1200);
SELECT (llm_maintenance() -> 'rolled_up')::int > 0 AS rolled_up;
-- not rolled up yet: a row in an hour already rolled up, and one after midnight local
SELECT ana_row('2026-01-10 13:30:00+00', 'lobo', 'whatsapp', 'openai', 'openai/gpt-4o-mini', 'ok', 1, false, false, 60, 20, 0.000021, 800);
SELECT ana_row('2026-01-11 03:30:00+00', 'coruja', NULL, 'openai', 'openai/gpt-4o-mini', 'ok', 1, false, false, 300, 100, 0.000105, 600);

-- The summary over a custom range starting and ending mid-hour: the partial
-- hours and the rows not rolled up come from the ledger, the rest from the
-- rollups.  Every field:
SELECT jsonb_pretty(llm_usage_summary('ana', 'custom', '2026-01-10 12:15:00+00', '2026-01-11 03:45:00+00'));
-- After the next pass the same rows come from the rollups: the same summary.
SELECT llm_usage_summary('ana', 'custom', '2026-01-10 12:15:00+00', '2026-01-11 03:45:00+00')::text AS before \gset
SELECT (llm_maintenance() -> 'rolled_up')::int AS rolled_up;
SELECT llm_usage_summary('ana', 'custom', '2026-01-10 12:15:00+00', '2026-01-11 03:45:00+00')::text
       = :'before' AS same_after_rollup;
-- The rollups equal the ledger, both ways.
SELECT count(*) AS ledger_not_in_rollup FROM (SELECT * FROM ana_ledger EXCEPT SELECT * FROM ana_rollup) x;
SELECT count(*) AS rollup_not_in_ledger FROM (SELECT * FROM ana_rollup EXCEPT SELECT * FROM ana_ledger) x;

-- Whole local days come from usage_daily (a change made there shows), and
-- agree with the ledger.
CREATE FUNCTION ana_days() RETURNS jsonb LANGUAGE sql AS $$
    SELECT llm_usage_summary('ana', 'custom', '2026-01-10 03:00+00', '2026-01-12 03:00+00')
$$;
SELECT s -> 'totals' ->> 'requests' AS requests, s -> 'totals' ->> 'attempts' AS attempts,
       (s -> 'totals' ->> 'cost_usd')::numeric
           = (SELECT sum(cost_usd) FROM llm_gateway.usage WHERE tenant = 'ana') AS cost_is_ledger,
       (SELECT string_agg((d ->> 'date') || ': ' || (d ->> 'requests'), ', ')
          FROM jsonb_array_elements(s -> 'by_day') d) AS by_day,
       s -> 'totals' ->> 'p50_latency_ms' AS p50
  FROM ana_days() s;
BEGIN;
UPDATE llm_gateway.usage_daily SET requests = requests + 100 WHERE tenant = 'ana';
SELECT ana_days() -> 'totals' ->> 'requests' AS read_from_daily;
ROLLBACK;
-- After a change of zone, earlier days come from the hours: they were
-- rolled up as days of the old zone.
SELECT llm_tenant_set('ana', '{"timezone": "America/Manaus"}') ->> 'timezone' AS zone;
BEGIN;
UPDATE llm_gateway.usage_daily SET requests = requests + 100 WHERE tenant = 'ana';
SELECT s -> 'totals' ->> 'requests' AS requests,
       (SELECT string_agg((d ->> 'date') || ': ' || (d ->> 'requests'), ', ')
          FROM jsonb_array_elements(s -> 'by_day') d) AS by_day
  FROM llm_usage_summary('ana', 'custom', '2026-01-10 04:00+00', '2026-01-12 04:00+00') s;
ROLLBACK;
SELECT llm_tenant_set('ana', '{"timezone": "America/Sao_Paulo"}') ->> 'timezone' AS zone;
-- A zone whose midnight is not on an hour (UTC+5:30): the day's edges come
-- from the ledger, before and after the rollup.
SELECT llm_tenant_set('kol', '{"timezone": "Asia/Kolkata"}') ->> 'tenant';
INSERT INTO llm_gateway.usage (created_at, request_id, tenant, model, status, cost_usd)
VALUES ('2026-03-09 18:00+00', '00000000-0000-4000-8000-0000000000b1', 'kol', 'm', 'ok', 1),
       ('2026-03-09 18:45+00', '00000000-0000-4000-8000-0000000000b2', 'kol', 'm', 'ok', 2),
       ('2026-03-10 18:29+00', '00000000-0000-4000-8000-0000000000b3', 'kol', 'm', 'ok', 4);
CREATE FUNCTION kol_day() RETURNS text LANGUAGE sql AS $$
    SELECT (s -> 'totals' ->> 'requests') || ' requests, ' || (s -> 'totals' ->> 'cost_usd')
           || ' USD, ' || (s -> 'by_day')::text
      FROM llm_usage_summary('kol', 'custom', '2026-03-09 18:30+00', '2026-03-10 18:30+00') s
$$;
SELECT kol_day() AS before_rollup;
SELECT (llm_maintenance() -> 'rolled_up')::int AS rolled_up;
SELECT kol_day() AS after_rollup;
SELECT day, sum(requests) AS requests, sum(cost_usd) AS cost_usd
  FROM llm_gateway.usage_daily WHERE tenant = 'ana' GROUP BY day ORDER BY day;
SELECT llm_gateway.hist_percentile(llm_gateway.hist_merge(latency_hist), 0.5)::numeric(10, 3) AS p50,
       llm_gateway.hist_percentile(llm_gateway.hist_merge(latency_hist), 1)::numeric(10, 3) AS max
  FROM llm_gateway.usage_hourly WHERE tenant = 'ana';

-- The dashboard views.
SELECT * FROM llm_gateway.usage_by_tenant WHERE tenant = 'ana' ORDER BY day;
SELECT * FROM llm_gateway.model_performance WHERE day BETWEEN '2026-01-10' AND '2026-01-11'
 ORDER BY day, model, provider;
SELECT * FROM llm_gateway.cache_stats_hourly WHERE tenant = 'ana' ORDER BY hour;
SELECT * FROM llm_gateway.error_rate_hourly WHERE hour BETWEEN '2026-01-10' AND '2026-01-12'
 ORDER BY hour, provider;
SELECT * FROM llm_gateway.cost_by_provider WHERE day BETWEEN '2026-01-10' AND '2026-01-11'
 ORDER BY day, provider;

-- Export: CSV with a header, or JSON lines.
SELECT regexp_replace(l, '^[0-9]+,', '<id>,') AS line
  FROM llm_usage_export('ana', '2026-01-10 12:00:00+00', '2026-01-10 13:00:00+00') l;
SELECT l::jsonb ->> 'model' AS model, l::jsonb ->> 'cost_local' AS cost_local
  FROM llm_usage_export('ana', '2026-01-10 12:00:00+00', '2026-01-10 13:00:00+00', 'json') l;

-- Refusals.
SELECT llm_usage_summary('ana', 'fortnight');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_usage_summary('ana', 'custom', '2026-01-11', '2026-01-10');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_usage_summary('nobody');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_usage_export('ana', '2026-01-10', '2026-01-11', 'xml');
\echo :LAST_ERROR_SQLSTATE
CREATE ROLE lg_ana_outsider;
SELECT llm_tenant_set('outsider', '{"members": ["lg_ana_outsider"]}') ->> 'tenant';
SET ROLE lg_ana_outsider;
SELECT llm_usage_summary('ana');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS ana_rows_visible FROM llm_gateway.usage_hourly WHERE tenant = 'ana';
-- NULL: every tenant the caller may see (none of January's, here)
SELECT llm_usage_summary(NULL, 'custom', '2026-01-10', '2026-01-12') -> 'totals' ->> 'requests' AS requests;
SELECT count(*) AS export_lines FROM llm_usage_export(NULL, '2026-01-10', '2026-01-12');
RESET ROLE;
SET ROLE lg_ana_member;
SELECT llm_usage_summary('ana', 'custom', '2026-01-10', '2026-01-12') -> 'totals' ->> 'requests' AS member_requests;
SELECT count(*) AS member_views_rows FROM llm_gateway.usage_by_tenant WHERE tenant = 'ana';
RESET ROLE;
SELECT llm_usage_summary(NULL, 'custom', '2026-01-10', '2026-01-12') -> 'totals' ->> 'requests' AS requests_all;

-- Holes: a row whose id was still in the spend queue when a pass moved
-- past it (its caller's transaction open, say) is read by a later pass,
-- once; the summary counts it meanwhile from the ledger.
SELECT llm_tenant_set('hol', '{"members": ["public"]}') ->> 'tenant';
SELECT llm_maintenance() IS NOT NULL AS settled;
INSERT INTO llm_gateway.usage (created_at, request_id, tenant, model, status, cost_usd)
VALUES ('2026-02-01 10:00+00', '00000000-0000-4000-8000-0000000000a1', 'hol', 'm', 'ok', 1),
       ('2026-02-01 10:01+00', '00000000-0000-4000-8000-0000000000a2', 'hol', 'm', 'ok', 2);
SELECT max(id) AS hole_id FROM llm_gateway.usage WHERE tenant = 'hol' \gset
SELECT llm_gateway.rollup(:hole_id, ARRAY[:hole_id]::bigint[], 1000) AS read_with_hole;
SELECT (SELECT rolled_up_to FROM llm_gateway.rollup_state) = :hole_id AS past_it,
       (SELECT array_agg(id) FROM llm_gateway.rollup_holes) = ARRAY[:hole_id]::bigint[] AS kept_as_hole,
       (SELECT sum(cost_usd) FROM llm_gateway.usage_hourly WHERE tenant = 'hol') AS rolled_up_cost,
       llm_usage_summary('hol', 'custom', '2026-02-01', '2026-02-02') -> 'totals' ->> 'requests' AS summary_requests;
-- still pending at the next pass: still a hole
SELECT llm_gateway.rollup(:hole_id, ARRAY[:hole_id]::bigint[], 1000) AS read_while_pending;
-- out of the queue: read once, and the hole is gone
SELECT llm_gateway.rollup(:hole_id, '{}', 1000) AS read_once_written;
SELECT llm_gateway.rollup(:hole_id, '{}', 1000) AS read_again;
SELECT (SELECT count(*) FROM llm_gateway.rollup_holes) AS holes,
       (SELECT sum(cost_usd) FROM llm_gateway.usage_hourly WHERE tenant = 'hol') AS rolled_up_cost,
       llm_usage_summary('hol', 'custom', '2026-02-01', '2026-02-02') -> 'totals' ->> 'requests' AS summary_requests;
-- a batch ends at its row limit, wherever the ids are
SELECT setval('llm_gateway.usage_id_seq', :hole_id + 1000000) IS NOT NULL AS gap;
INSERT INTO llm_gateway.usage (created_at, request_id, tenant, model, status, cost_usd)
SELECT '2026-02-01 11:00+00', md5(i::text)::uuid, 'hol', 'm', 'ok', 1 FROM generate_series(1, 3) i;
SELECT llm_gateway.rollup(:hole_id + 2000000, '{}', 2) AS batch_of_two;
SELECT rolled_up_to - :hole_id AS watermark_moved FROM llm_gateway.rollup_state;
SELECT llm_gateway.rollup(:hole_id + 2000000, '{}', 2) AS the_rest;
SELECT rolled_up_to - :hole_id AS watermark_moved FROM llm_gateway.rollup_state;

-- The current month of a tenant with a budget: the calendar period, every
-- day so far (zero-filled), the budget with its projection, and the trends
-- against last month up to the same day and hour.
SELECT llm_tenant_set('sumb', '{"members": ["public"]}') ->> 'tenant';
SELECT llm_budget_set('sumb', 1, 'usd', 'monthly') ->> 'unit';
SELECT llm_chat('sumb', 'openai/gpt-4o-mini', 'one'), llm_chat('sumb', 'openai/gpt-4o-mini', 'two');
SELECT sum(cost_usd) AS sumb_cost FROM llm_gateway.usage WHERE tenant = 'sumb' \gset
WITH x AS (SELECT llm_usage_summary('sumb') AS s,
                  date_trunc('month', now() AT TIME ZONE 'UTC') AS m)
SELECT s -> 'period' ->> 'name' AS name,
       (s -> 'period' ->> 'start')::timestamptz = m AT TIME ZONE 'UTC' AS starts_at_month,
       (s -> 'period' ->> 'end')::timestamptz = (m + interval '1 month') AT TIME ZONE 'UTC' AS ends_at_next,
       s -> 'totals' ->> 'requests' AS requests,
       (s -> 'totals' ->> 'cost_usd')::numeric = :sumb_cost AS cost_is_ledger,
       jsonb_array_length(s -> 'by_day') = extract(day FROM now() AT TIME ZONE 'UTC') AS every_day,
       (SELECT count(*) FROM jsonb_array_elements(s -> 'by_day') d
         WHERE (d ->> 'requests')::int > 0) AS days_with_calls,
       s -> 'budget' ->> 'unit' AS unit, s -> 'budget' ->> 'period' AS period,
       s -> 'budget' ->> 'limit' AS "limit",
       (s -> 'budget' ->> 'used')::numeric = :sumb_cost AS used_is_ledger,
       (s -> 'budget' ->> 'percent')::numeric = round(100 * :sumb_cost, 2) AS percent_ok,
       (s -> 'budget' ->> 'projection')::numeric >= :sumb_cost AS projection_ahead,
       s -> 'budget' ->> 'state' AS state,
       (s -> 'trends' -> 'previous' ->> 'start')::timestamptz
           = (m - interval '1 month') AT TIME ZONE 'UTC' AS previous_month,
       s -> 'trends' -> 'previous' ->> 'requests' AS previous_requests,
       s -> 'trends' ->> 'requests_pct' AS requests_pct
  FROM x;
-- today and this week, in the tenant's time zone
SELECT (s -> 'period' ->> 'start')::timestamptz
           = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS today_starts,
       jsonb_array_length(s -> 'by_day') AS today_days, s -> 'totals' ->> 'requests' AS today_requests
  FROM llm_usage_summary('sumb', 'today') s;
SELECT (s -> 'period' ->> 'start')::timestamptz
           = date_trunc('week', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS week_starts_monday,
       (s -> 'period' ->> 'end')::timestamptz - (s -> 'period' ->> 'start')::timestamptz AS length
  FROM llm_usage_summary('sumb', 'week') s;

---------------------------------------------------------------------------
-- Budget periods: closed exactly once at the boundary (the tenant's
-- midnight), and caught up across missed ones.
---------------------------------------------------------------------------
SELECT llm_tenant_set('per', '{"members": ["public"], "timezone": "America/Sao_Paulo"}') ->> 'tenant';
SELECT llm_budget_set('per', 10, 'requests', 'daily') ->> 'unit';
SELECT llm_chat('per', 'openai/gpt-4o-mini', 'one'), llm_chat('per', 'openai/gpt-4o-mini', 'two');
SELECT set_config('per.boundary', (date_trunc('day', now() AT TIME ZONE 'America/Sao_Paulo')
                                   + interval '1 day')::text, false) IS NOT NULL AS noted;
CREATE FUNCTION per_closed(at timestamptz) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM llm_maintenance(at);
    RETURN (SELECT count(*) FROM llm_gateway.budget_periods WHERE tenant = 'per');
END $$;
-- one microsecond before the boundary: nothing to close
SELECT per_closed((current_setting('per.boundary')::timestamp AT TIME ZONE 'America/Sao_Paulo')
                  - interval '1 microsecond') AS closed;
-- at the boundary: today's period, once
SELECT per_closed(current_setting('per.boundary')::timestamp AT TIME ZONE 'America/Sao_Paulo') AS closed;
SELECT per_closed(current_setting('per.boundary')::timestamp AT TIME ZONE 'America/Sao_Paulo') AS closed_again;
-- three missed boundaries later: three more periods
SELECT per_closed((current_setting('per.boundary')::timestamp AT TIME ZONE 'America/Sao_Paulo')
                  + interval '3 days 1 hour') AS caught_up;
SELECT (period_start AT TIME ZONE 'America/Sao_Paulo')::time AS local_start,
       period_end - period_start AS length, used, limit_value, percent, exceeded
  FROM llm_gateway.budget_periods WHERE tenant = 'per' ORDER BY period_start;

---------------------------------------------------------------------------
-- Sweep: thresholds reached without a call; reconcile: a counter set to
-- the ledger.
---------------------------------------------------------------------------
SELECT llm_tenant_set('swp', '{"members": ["public"]}') ->> 'tenant';
SELECT llm_budget_set('swp', 10, 'requests', 'daily') ->> 'unit';
SELECT llm_chat('swp', 'openai/gpt-4o-mini', 'one'), llm_chat('swp', 'openai/gpt-4o-mini', 'two');
SELECT llm_budget_set('swp', 2, 'requests', 'daily', '{"at_limit": "allow"}') ->> 'amount';
SELECT (llm_maintenance() -> 'alerts_swept')::int >= 3 AS swept;
SELECT type, threshold FROM llm_gateway.alerts WHERE tenant = 'swp' ORDER BY threshold;
-- a row the counter never saw (written around the gateway, say)
INSERT INTO llm_gateway.usage (request_id, tenant, model, status)
VALUES ('00000000-0000-4000-8000-000000000001', 'swp', 'openai/gpt-4o-mini', 'ok');
SELECT (llm_maintenance() -> 'reconciled')::int >= 1 AS reconciled;
SELECT b ->> 'used' AS used FROM jsonb_array_elements(llm_budget_status('swp') -> 'budgets') b;

---------------------------------------------------------------------------
-- Retention: raw partitions older than the kept months go, rollups stay.
---------------------------------------------------------------------------
SELECT count(*) > 0 AS partitions FROM pg_inherits WHERE inhparent = 'llm_gateway.usage'::regclass;
SELECT sum(requests) AS rolled_up_requests FROM llm_gateway.usage_hourly WHERE tenant = 'ana';
SET llm_gateway.ledger_retention_months = 2;
SELECT jsonb_array_length(llm_maintenance(now() + interval '4 months') -> 'partitions' -> 'dropped') > 0 AS dropped;
SELECT count(*) AS ana_raw_rows FROM llm_gateway.usage WHERE tenant = 'ana';
SELECT sum(requests) AS rolled_up_requests FROM llm_gateway.usage_hourly WHERE tenant = 'ana';
SELECT llm_usage_summary('ana', 'custom', '2026-01-10 12:00:00+00', '2026-01-11 04:00:00+00') -> 'totals' ->> 'requests' AS summary_requests;
RESET llm_gateway.ledger_retention_months;
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'calls go on') AS after_retention;
