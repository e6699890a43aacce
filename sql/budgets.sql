-- budgets: every unit and period, what happens at the limit (block, allow,
-- downgrade, suspend), thresholds and alerts, plans and agents, currencies.
\set SHOW_CONTEXT never
-- errors print without DETAIL: it names the (moving) end of the period
\set VERBOSITY terse

-- Prices that make the arithmetic easy: 1 and 2 USD per million tokens.
-- A call of 'hi' with max_tokens 10 is estimated at 5 prompt + 10 output
-- tokens (25e-6 USD) and costs 5 + 4 tokens (13e-6 USD) at the mock.
SELECT llm_model_set('bud/model', 'openai', '{"upstream_model": "gpt-4o-mini",
         "input_usd_per_mtok": 1, "output_usd_per_mtok": 2, "max_output_tokens": 100}') ->> 'model';
SELECT llm_model_set('bud/cheap', 'openai', '{"upstream_model": "gpt-4o-mini",
         "input_usd_per_mtok": 0.1, "output_usd_per_mtok": 0.2, "max_output_tokens": 100}') ->> 'model';
CREATE FUNCTION bud_call(tenant text, model text DEFAULT 'bud/model', options jsonb DEFAULT '{}')
RETURNS text LANGUAGE sql AS $$
    SELECT r ->> 'model' || CASE WHEN (r ->> 'over_budget')::boolean THEN ' over_budget' ELSE '' END
           || coalesce(' downgraded_from ' || (r ->> 'downgraded_from'), '')
      FROM llm_complete(tenant, model, '[{"role": "user", "content": "hi"}]',
                        '{"max_tokens": 10}'::jsonb || options) r
$$;

---------------------------------------------------------------------------
-- llm_budget_set: what it accepts
---------------------------------------------------------------------------
SELECT llm_tenant_set('bud', '{"members": ["public"]}') ->> 'tenant';
SELECT llm_budget_set('bud', 0.00005, 'usd', 'daily', '{"thresholds": [0.25, 0.5]}')
       - 'id' - 'tenant';
SELECT llm_budget_set('nobody', 1);
SELECT llm_budget_set('bud', 0);
SELECT llm_budget_set('bud', 10000000);
SELECT llm_budget_set('bud', 1.5, 'tokens');
SELECT llm_budget_set('bud', 1, 'xyz');
SELECT llm_budget_set('bud', 1, 'usd', 'hourly');
SELECT llm_budget_set('bud', 1, 'usd', 'daily', '{"at_limit": "downgrade"}');
SELECT llm_budget_set('bud', 1, 'usd', 'daily', '{"at_limit": "pray"}');
SELECT llm_budget_set('bud', 1, 'usd', 'daily', '{"downgrade_model": "no/such"}');
SELECT llm_budget_set('bud', 1, 'usd', 'daily', '{"thresholds": [0, 0.5]}');
SELECT llm_budget_set('bud', 1, 'usd', 'daily', '{"thresholds": {"left": [0.1]}}');
SELECT llm_budget_set('bud', 1, 'usd', 'daily', '{"agent": "lobo", "suspend": "period"}');
SELECT llm_budget_set('bud', 1, 'usd', 'daily', '{"webhook": "ftp://example.com/x"}');
SELECT llm_budget_set('bud', 1, 'usd', 'daily', '{"colour": "red"}');
-- the seed's "remaining" style: 20/10/5/1 % left are 80/90/95/99 % used
SELECT llm_budget_set('bud', 0.00005, 'usd', 'daily',
           '{"thresholds": {"remaining": [0.2, 0.1, 0.05, 0.01]}}') -> 'thresholds';
SELECT llm_budget_set('bud', 0.00005, 'usd', 'daily', '{"thresholds": [0.25, 0.5]}') -> 'thresholds';

---------------------------------------------------------------------------
-- usd, block: spent + reserved + estimate must fit
---------------------------------------------------------------------------
SELECT bud_call('bud');        -- 0 + 25e-6 fits 50e-6; spends 13e-6
SELECT bud_call('bud');        -- 13e-6 + 25e-6 fits; spends 26e-6
SELECT bud_call('bud');        -- 26e-6 + 25e-6 does not fit
\echo :LAST_ERROR_SQLSTATE
-- a smaller max_tokens makes a smaller worst case, which fits
SELECT bud_call('bud', options => '{"max_tokens": 5}');
SELECT b ->> 'unit' AS unit, b ->> 'period' AS period, b ->> 'limit' AS lim, b ->> 'used' AS used,
       b ->> 'reserved' AS reserved, b ->> 'percent' AS percent, b ->> 'state' AS state,
       (b ->> 'period_end')::timestamptz - (b ->> 'period_start')::timestamptz AS length
  FROM jsonb_array_elements(llm_budget_status('bud') -> 'budgets') b;

-- thresholds 0.25 and 0.5 fired once each (the worker or the maintenance
-- pass writes them)
SELECT llm_maintenance() IS NOT NULL AS flushed;
SELECT type, threshold, used, limit_value, unit, percent, message, delivery_state
  FROM llm_gateway.alerts WHERE tenant = 'bud' ORDER BY id;

---------------------------------------------------------------------------
-- allow: over the limit, flagged on the result, the ledger and an alert
---------------------------------------------------------------------------
SELECT llm_budget_set('bud', 0.00005, 'usd', 'daily', '{"at_limit": "allow"}') ->> 'at_limit';
SELECT bud_call('bud');
SELECT bud_call('bud');
SELECT llm_maintenance() IS NOT NULL AS flushed;
SELECT type, threshold, percent, message FROM llm_gateway.alerts
 WHERE tenant = 'bud' AND type = 'daily_exceeded';
SELECT count(*) FILTER (WHERE over_budget) AS over, count(*) AS calls
  FROM llm_gateway.usage WHERE tenant = 'bud';
SELECT b ->> 'used' AS used, b ->> 'state' AS state
  FROM jsonb_array_elements(llm_budget_status('bud') -> 'budgets') b;

-- weekly and monthly budgets: warning, critical (from 0.9) and exceeded
SELECT llm_tenant_set('bud_month', '{"members": ["public"]}') ->> 'tenant';
SELECT llm_budget_set('bud_month', 1, 'requests', 'monthly',
           '{"at_limit": "allow", "thresholds": [0.5, 0.95]}') ->> 'period';
SELECT bud_call('bud_month');
SELECT llm_maintenance() IS NOT NULL AS flushed;
SELECT type, threshold, message FROM llm_gateway.alerts WHERE tenant = 'bud_month' ORDER BY threshold;

---------------------------------------------------------------------------
-- downgrade: the call goes to the budget's downgrade model
---------------------------------------------------------------------------
SELECT llm_tenant_set('bud_down', '{"members": ["public"]}') ->> 'tenant';
SELECT llm_budget_set('bud_down', 0.00003, 'usd', 'daily',
           '{"at_limit": "downgrade", "downgrade_model": "bud/cheap"}') ->> 'downgrade_model';
SELECT bud_call('bud_down');   -- fits: spends 13e-6
SELECT bud_call('bud_down');   -- 13e-6 + 25e-6 > 30e-6: bud/cheap's 2.5e-6 fits
SELECT model, requested_model, downgraded_from, cost_usd FROM llm_gateway.usage
 WHERE tenant = 'bud_down' ORDER BY id;
-- once even the downgrade model does not fit, the call is refused
SELECT llm_budget_set('bud_down', 0.0000145, 'usd', 'daily',
           '{"at_limit": "downgrade", "downgrade_model": "bud/cheap"}') ->> 'amount';
SELECT bud_call('bud_down');
\echo :LAST_ERROR_SQLSTATE

---------------------------------------------------------------------------
-- requests, tokens, and a currency; daily, weekly, monthly
---------------------------------------------------------------------------
SELECT llm_tenant_set('bud_units', '{"members": ["public"], "currency": "BRL",
                                     "timezone": "America/Sao_Paulo"}') ->> 'currency';
SELECT llm_budget_set('bud_units', 3, 'requests', 'daily') ->> 'unit';
SELECT llm_budget_set('bud_units', 30, 'tokens', 'weekly') ->> 'unit';
SELECT llm_budget_set('bud_units', 0.0002, 'brl', 'monthly') ->> 'unit';
SELECT bud_call('bud_units');  -- tokens 0+15, brl 0+125e-6: fit
SELECT bud_call('bud_units');  -- tokens 9+15, brl 65e-6+125e-6: fit
SELECT bud_call('bud_units');  -- tokens 18+15 > 30
\echo :LAST_ERROR_SQLSTATE
SELECT llm_budget_set('bud_units', 300, 'tokens', 'weekly') ->> 'amount';
SELECT bud_call('bud_units');  -- brl 130e-6 + 125e-6 > 200e-6
\echo :LAST_ERROR_SQLSTATE
SELECT llm_budget_set('bud_units', 1, 'brl', 'monthly') ->> 'amount';
SELECT bud_call('bud_units');  -- third request of the day
SELECT bud_call('bud_units');  -- a fourth is one too many
\echo :LAST_ERROR_SQLSTATE
-- the ledger has the cost in USD and in BRL at the fallback rate
SELECT cost_usd, currency, exchange_rate, rate_source, cost_local
  FROM llm_gateway.usage WHERE tenant = 'bud_units' ORDER BY id LIMIT 1;
SELECT b ->> 'unit' AS unit, b ->> 'period' AS period, b ->> 'limit' AS lim, b ->> 'used' AS used,
       b ->> 'state' AS state,
       to_char((b ->> 'period_start')::timestamptz AT TIME ZONE 'America/Sao_Paulo', 'HH24:MI') AS local_start
  FROM jsonb_array_elements(llm_budget_status('bud_units') -> 'budgets') b;

-- calendar periods in a time zone: days from local midnight, ISO weeks from
-- Monday, months from the 1st (03:00 UTC in Sao Paulo, UTC-3)
SELECT p, b.*
  FROM unnest(ARRAY['daily', 'weekly', 'monthly']) p,
       llm_gateway.period_bounds(p, 'America/Sao_Paulo', '2026-03-01 02:30:00+00') b;
-- a day with a DST change is 23 hours long
SELECT period_end - period_start AS dst_day
  FROM llm_gateway.period_bounds('daily', 'America/New_York', '2026-03-08 12:00:00+00');

---------------------------------------------------------------------------
-- exchange rates: manual, refreshed, last known, fallback, missing
---------------------------------------------------------------------------
SELECT llm_budget_set('bud_units', 100, 'requests', 'daily') ->> 'amount';
SELECT * FROM llm_gateway.rate_for('USD');
SELECT * FROM llm_gateway.rate_for('BRL');
SELECT llm_exchange_rate_set('BRL', 5.5);
INSERT INTO llm_gateway.exchange_rates (currency, rate, source) VALUES ('EUR', 0.9, 'api');
SELECT * FROM llm_gateway.rate_for('EUR');
UPDATE llm_gateway.exchange_rates SET last_error = 'HTTP 503' WHERE currency = 'EUR';
SELECT * FROM llm_gateway.rate_for('EUR');
SELECT * FROM llm_gateway.rate_for('JPY');
SELECT llm_exchange_rate_set('USD', 1);
SELECT llm_exchange_rate_set('BRL', NULL);
SELECT bud_call('bud_units') IS NOT NULL AS called;
SELECT llm_exchange_rate_set('BRL', 5.5);
SELECT bud_call('bud_units') IS NOT NULL AS called;
SELECT exchange_rate, rate_source, cost_local = round(cost_usd * 5.5, 12) AS converted
  FROM llm_gateway.usage WHERE tenant = 'bud_units' ORDER BY id DESC LIMIT 2;
SELECT llm_exchange_rate_set('BRL', NULL);
DELETE FROM llm_gateway.exchange_rates WHERE currency = 'EUR';

---------------------------------------------------------------------------
-- suspension: until the period ends, or until an administrator lifts it
---------------------------------------------------------------------------
SELECT llm_tenant_set('bud_susp', '{"members": ["public"]}') ->> 'tenant';
SELECT llm_budget_set('bud_susp', 2, 'requests', 'daily',
           '{"at_limit": "allow", "suspend": "period"}') ->> 'suspend';
SELECT bud_call('bud_susp');
SELECT bud_call('bud_susp');   -- reaches the limit: the tenant is suspended
SELECT bud_call('bud_susp');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_maintenance() IS NOT NULL AS flushed;
SELECT suspended_until > now() AS suspended, suspended_reason
  FROM llm_gateway.tenants WHERE tenant = 'bud_susp';
SELECT llm_budget_status('bud_susp') -> 'suspended' AS suspended,
       llm_budget_status('bud_susp') -> 'budgets' -> 0 ->> 'state' AS state;
SELECT type, regexp_replace(message, 'until .*', 'until <period end>') AS message
  FROM llm_gateway.alerts WHERE tenant = 'bud_susp';
SELECT llm_tenant_set('bud_susp', '{"suspended": false}') ->> 'suspended_until';
SELECT bud_call('bud_susp');   -- allowed again, over budget
-- an administrator suspends by hand, and lifts it
SELECT llm_tenant_set('bud_susp', '{"suspended": true}') ->> 'suspended_until';
SELECT bud_call('bud_susp');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_tenant_set('bud_susp', '{"suspended": false}') ->> 'suspended_until';
SELECT bud_call('bud_susp');

---------------------------------------------------------------------------
-- plans: default quotas and budgets; the tenant's own ones win
---------------------------------------------------------------------------
SELECT llm_plan_set('starter', '{"name": "Starter", "rpm": 100, "allowed_models": ["bud/*"],
           "budgets": [{"amount": 1, "unit": "requests", "period": "daily"}]}')
       - 'created_at' - 'updated_at';
SELECT llm_plan_set('starter', '{"budgets": [{"unit": "requests"}]}');
SELECT llm_tenant_set('bud_plan', '{"members": ["public"], "plan": "starter"}') ->> 'plan';
SELECT bud_call('bud_plan', 'openai/gpt-4o-mini');   -- the plan's allowed models
\echo :LAST_ERROR_SQLSTATE
SELECT bud_call('bud_plan');
SELECT bud_call('bud_plan');   -- the plan's budget: one request a day
\echo :LAST_ERROR_SQLSTATE
SELECT b ->> 'scope' AS scope, b ->> 'unit' AS unit, b ->> 'used' AS used
  FROM jsonb_array_elements(llm_budget_status('bud_plan') -> 'budgets') b;
SELECT llm_budget_set('bud_plan', 5, 'requests', 'daily') ->> 'amount';
SELECT bud_call('bud_plan');   -- the tenant's own budget replaces the plan's
SELECT b ->> 'scope' AS scope, b ->> 'used' AS used
  FROM jsonb_array_elements(llm_budget_status('bud_plan') -> 'budgets') b;
SELECT llm_plan_delete('starter');
SELECT llm_plan_set('starter', '{"rpd": 2}') ->> 'rpd';
SELECT bud_call('bud_plan');   -- the plan's 2 requests per day are used up
\echo :LAST_ERROR_SQLSTATE

---------------------------------------------------------------------------
-- tenant rate limits
---------------------------------------------------------------------------
SELECT llm_tenant_set('bud_rate', '{"members": ["public"], "rpm": 2}') ->> 'rpm';
SELECT bud_call('bud_rate');
SELECT bud_call('bud_rate');
SELECT bud_call('bud_rate');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_tenant_set('bud_rate', '{"rpm": null, "tpm": 12}') ->> 'tpm';
SELECT bud_call('bud_rate');   -- estimated at 15 tokens: can never fit
\echo :LAST_ERROR_SQLSTATE
-- the window holds the two calls' 18 tokens
SELECT llm_tenant_set('bud_rate', '{"tpm": 40}') ->> 'tpm';
SELECT bud_call('bud_rate');   -- 18 + 15 fits; 9 used
SELECT bud_call('bud_rate');   -- 27 + 15 > 40
\echo :LAST_ERROR_SQLSTATE
SELECT llm_tenant_set('bud_rate', '{"tpm": null, "tpd": 30}') ->> 'tpd';
SELECT bud_call('bud_rate');   -- 27 used today (the ledger says) + 15 > 30
\echo :LAST_ERROR_SQLSTATE
SELECT llm_tenant_set('bud_rate', '{"tpd": null, "rpd": 3}') ->> 'rpd';
SELECT bud_call('bud_rate');   -- 3 requests today already
\echo :LAST_ERROR_SQLSTATE
SELECT llm_maintenance() IS NOT NULL AS flushed;
SELECT type, message FROM llm_gateway.alerts WHERE tenant = 'bud_rate' ORDER BY id;

---------------------------------------------------------------------------
-- agents: preferred model, own daily limit and rate limits, the switch
---------------------------------------------------------------------------
SELECT llm_tenant_set('bud_agents', '{"members": ["public"]}') ->> 'tenant';
SELECT llm_agent_set('bud_agents', 'lobo', '{"name": "Lobo", "role": "coordinator",
           "preferred_model": "bud/cheap", "daily_limit": 0.00002}')
       - 'created_at' - 'updated_at';
SELECT llm_agent_set('bud_agents', 'aguia', '{"name": "Águia", "rpm": 1}') ->> 'rpm';
SELECT llm_agent_set('nobody', 'x');
SELECT llm_agent_set('bud_agents', 'lobo', '{"preferred_model": "no/such"}');
SELECT r ->> 'model' AS model
  FROM llm_complete('bud_agents', NULL, '[{"role": "user", "content": "hi"}]',
                    '{"agent": "lobo", "max_tokens": 10}') r;
SELECT bud_call('bud_agents', options => '{"agent": "lobo"}');   -- 1.3e-6 + 25e-6 > 20e-6
\echo :LAST_ERROR_SQLSTATE
SELECT bud_call('bud_agents', options => '{"agent": "aguia"}');
SELECT bud_call('bud_agents', options => '{"agent": "aguia"}');
\echo :LAST_ERROR_SQLSTATE
SELECT bud_call('bud_agents', options => '{"agent": "raposa"}');  -- no row: no limits of its own
SELECT llm_agent_set('bud_agents', 'raposa', '{"active": false}') ->> 'active';
SELECT bud_call('bud_agents', options => '{"agent": "raposa"}');
\echo :LAST_ERROR_SQLSTATE
SELECT b ->> 'scope' AS scope, b ->> 'agent' AS agent, b ->> 'unit' AS unit, b ->> 'period' AS period
  FROM jsonb_array_elements(llm_budget_status('bud_agents') -> 'budgets') b;
SELECT llm_agent_set('bud_agents', 'lobo', '{"daily_limit": null}') -> 'daily_limit';
SELECT llm_agent_delete('bud_agents', 'aguia');

---------------------------------------------------------------------------
-- webhooks: delivered by the maintenance pass, retried after a failure
---------------------------------------------------------------------------
SELECT llm_tenant_set('bud_hook', '{"members": ["public"]}') ->> 'tenant';
SELECT llm_budget_set('bud_hook', 1, 'requests', 'daily',
           jsonb_build_object('at_limit', 'allow', 'thresholds', '[1]'::jsonb,
                              'webhook', current_setting('mock.url') || '/_mock/hook/regress?fail=1'))
       ->> 'webhook';
SELECT bud_call('bud_hook');
SELECT llm_maintenance() -> 'webhooks_delivered' AS attempts;
SELECT type, delivery_state, delivery_attempts, last_delivery_error, next_delivery_at > now() AS later
  FROM llm_gateway.alerts WHERE tenant = 'bud_hook';
UPDATE llm_gateway.alerts SET next_delivery_at = now() WHERE tenant = 'bud_hook';
SELECT llm_maintenance() -> 'webhooks_delivered' AS attempts;
SELECT type, delivery_state, delivery_attempts, last_delivery_error, delivered_at IS NOT NULL AS delivered
  FROM llm_gateway.alerts WHERE tenant = 'bud_hook';
SELECT d.attempt, d.http_status, d.error FROM llm_gateway.alert_deliveries d
  JOIN llm_gateway.alerts a ON a.id = d.alert_id WHERE a.tenant = 'bud_hook' ORDER BY d.attempt;

---------------------------------------------------------------------------
-- isolation: members read and acknowledge their own tenants' alerts only
---------------------------------------------------------------------------
CREATE ROLE lg_bud_a;
CREATE ROLE lg_bud_b;
SELECT llm_tenant_set('bud_a', '{"members": ["lg_bud_a"]}') ->> 'tenant';
SELECT llm_tenant_set('bud_b', '{"members": ["lg_bud_b"]}') ->> 'tenant';
SELECT llm_budget_set('bud_a', 1, 'requests', 'daily', '{"at_limit": "allow"}') ->> 'unit';
SELECT llm_budget_set('bud_b', 1, 'requests', 'daily', jsonb_build_object('at_limit', 'allow',
           'webhook', current_setting('mock.url') || '/_mock/hook/secret-token')) ->> 'unit';
GRANT EXECUTE ON FUNCTION bud_call(text, text, jsonb) TO lg_bud_a, lg_bud_b;
SET ROLE lg_bud_a;
SELECT bud_call('bud_a');
SELECT bud_call('bud_b');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_budget_status('bud_b');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE lg_bud_b;
SELECT bud_call('bud_b');
RESET ROLE;
SELECT llm_maintenance() IS NOT NULL AS flushed;
SET ROLE lg_bud_a;
-- (tenants with member "public" are everybody's: look at these two only)
SELECT t FROM unnest(llm_gateway.member_tenants()) t WHERE t IN ('bud_a', 'bud_b');
SELECT tenant, type FROM llm_gateway.alerts WHERE tenant IN ('bud_a', 'bud_b') ORDER BY id;
SELECT DISTINCT tenant FROM llm_gateway.usage WHERE tenant IN ('bud_a', 'bud_b');
SELECT tenant, unit FROM llm_gateway.budgets WHERE tenant IN ('bud_a', 'bud_b');
SELECT tenant FROM llm_gateway.tenants WHERE tenant IN ('bud_a', 'bud_b');
SELECT count(*) AS provider_alerts FROM llm_gateway.alerts WHERE tenant IS NULL;
SELECT webhook FROM llm_gateway.budgets;
\echo :LAST_ERROR_SQLSTATE
SELECT llm_alert_ack(id) FROM llm_gateway.alerts WHERE tenant = 'bud_a';
SELECT llm_alert_ack(id) FROM llm_gateway.alerts WHERE tenant = 'bud_a';
RESET ROLE;
SELECT set_config('bud.b_alert', max(id)::text, false) IS NOT NULL AS noted
  FROM llm_gateway.alerts WHERE tenant = 'bud_b';
SET ROLE lg_bud_a;
-- another tenant's alert is not there for lg_bud_a (its id is not printed)
DO $$
BEGIN
    PERFORM llm_alert_ack(current_setting('bud.b_alert')::bigint);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'refused: %', SQLSTATE;
END
$$;
SELECT llm_alert_ack(-1);
\echo :LAST_ERROR_SQLSTATE
SELECT llm_budget_set('bud_a', 100, 'requests');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT tenant, acknowledged_by FROM llm_gateway.alerts
 WHERE tenant IN ('bud_a', 'bud_b') ORDER BY tenant;

SELECT llm_budget_delete(id) FROM llm_gateway.budgets WHERE tenant = 'bud_a';
SELECT bud_call('bud_a');
