-- catalog_cache: a backend reuses what the catalog said about a tenant,
-- agent and model, and sees every change at the next call.
\set SHOW_CONTEXT never
\set VERBOSITY terse
\set m4 'openai/gpt-4o-mini'
SELECT llm_tenant_set('cc', '{"members": ["public"]}') ->> 'tenant';
SELECT llm_model_set('cc/model', 'openai',
         '{"upstream_model": "gpt-4o-mini", "input_usd_per_mtok": 1, "output_usd_per_mtok": 1}') ->> 'model';
SELECT llm_chat('cc', 'cc/model', 'warm');

-- Warm calls read no configuration table at all (the statistics of
-- earlier transactions flushed first: they count until then).
SELECT pg_stat_force_next_flush();
BEGIN;
SELECT count(*) FROM (SELECT llm_chat('cc', 'cc/model', 'again ' || i) FROM generate_series(1, 5) i) c;
SELECT relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0) AS scans
  FROM pg_stat_xact_user_tables
 WHERE schemaname = 'llm_gateway'
   AND relname IN ('tenants', 'tenant_members', 'models', 'providers', 'routes', 'budgets', 'agents')
 ORDER BY 1;
COMMIT;

-- A change that commits reaches the next call.
SELECT llm_tenant_set('cc', '{"active": false}') ->> 'active' AS active;
SELECT llm_chat('cc', 'cc/model', 'refused');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_tenant_set('cc', '{"active": true}') ->> 'active' AS active;
SELECT llm_chat('cc', 'cc/model', 'allowed again');

-- A price change: the next call is priced anew.
SELECT (llm_complete('cc', 'cc/model', '[{"role": "user", "content": "p [[mock:usage=1000000,0]]"}]')
        -> 'usage' ->> 'cost_usd') AS cost_at_1;
SELECT llm_model_set('cc/model', 'openai', '{"input_usd_per_mtok": 2}') ->> 'model';
SELECT (llm_complete('cc', 'cc/model', '[{"role": "user", "content": "p [[mock:usage=1000000,0]]"}]')
        -> 'usage' ->> 'cost_usd') AS cost_at_2;

-- A change inside the transaction is seen by its own calls; rolled back,
-- by nobody.
BEGIN;
SELECT llm_tenant_set('cc', '{"allowed_models": ["anthropic/*"]}') ->> 'allowed_models' AS allowed;
SELECT llm_chat('cc', 'cc/model', 'not allowed in here');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT llm_chat('cc', 'cc/model', 'allowed after the rollback');

-- Statements straight on a configuration table count too.
UPDATE llm_gateway.tenants SET active = false WHERE tenant = 'cc';
SELECT llm_chat('cc', 'cc/model', 'refused again');
\echo :LAST_ERROR_SQLSTATE
UPDATE llm_gateway.tenants SET active = true WHERE tenant = 'cc';

-- Membership is checked on every call, cached or not.
CREATE ROLE lg_cc_member;
SELECT llm_tenant_set('cc_members', '{"members": ["lg_cc_member"]}') ->> 'tenant';
SET ROLE lg_cc_member;
SELECT llm_chat('cc_members', :'m4', 'a member');
RESET ROLE;
CREATE ROLE lg_cc_other;
SET ROLE lg_cc_other;
SELECT llm_chat('cc_members', :'m4', 'not a member');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT llm_tenant_set('cc_members', '{"members": []}') ->> 'tenant';
SET ROLE lg_cc_member;
SELECT llm_chat('cc_members', :'m4', 'no longer a member');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- A setting the resolution reads: the fallback exchange rate.
SELECT llm_tenant_set('cc_brl', '{"members": ["public"], "currency": "BRL"}') ->> 'currency';
SELECT llm_complete('cc_brl', :'m4', '[{"role": "user", "content": "rate"}]') -> 'usage' ->> 'exchange_rate' AS rate;
ALTER SYSTEM SET llm_gateway.fallback_rates = 'BRL=6.25';
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SELECT llm_complete('cc_brl', :'m4', '[{"role": "user", "content": "rate"}]') -> 'usage' ->> 'exchange_rate' AS rate;
ALTER SYSTEM RESET llm_gateway.fallback_rates;
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);

-- catalog_cache_ttl = 0: the catalog is read on every call.
SET llm_gateway.catalog_cache_ttl = 0;
SELECT pg_stat_force_next_flush();
BEGIN;
SELECT count(*) FROM (SELECT llm_chat('cc', 'cc/model', 'uncached ' || i) FROM generate_series(1, 3) i) c;
SELECT coalesce(idx_scan, 0) + coalesce(seq_scan, 0) >= 3 AS read_each_time
  FROM pg_stat_xact_user_tables WHERE schemaname = 'llm_gateway' AND relname = 'tenants';
COMMIT;
RESET llm_gateway.catalog_cache_ttl;
SELECT llm_model_delete('cc/model', 'openai');
