-- The script make demo runs against its throwaway cluster.
\pset footer off
\echo
\echo '-- 1. Install, point the "openai" provider at the upstream (the key is stored sealed), create a tenant'
CREATE EXTENSION llm_gateway;
SELECT llm_provider_set('openai', 'openai',
           jsonb_build_object('base_url', :'base_url', 'api_key', :'api_key'))
       ->> 'api_key_set' AS key_stored_sealed;
CREATE ROLE acme_app LOGIN;
SELECT llm_plan_set('pro', '{"name": "Pro", "rpm": 600, "max_concurrency": 20}') ->> 'plan' AS plan;
SELECT llm_tenant_set('acme', '{"name": "Acme Ltda", "plan": "pro",
                                "members": ["acme_app"],
                                "default_model": "openai/gpt-4o-mini"}') ->> 'tenant' AS tenant;
SELECT llm_tenant_set('globex', '{"name": "Globex"}') ->> 'tenant' AS other_tenant;

\echo
\echo '-- 2. A call, as the application role, and the JSON it returns'
SET ROLE acme_app;
SELECT jsonb_pretty(llm_complete('acme', 'openai/gpt-4o-mini',
         '[{"role": "system", "content": "Você é um atendente."},
           {"role": "user", "content": "Qual o horário de funcionamento?"}]',
         '{"agent": "atendente", "channel": "whatsapp", "max_tokens": 100}')) AS result;

\echo
\echo '-- 3. More calls: the tenant default model, llm_chat, conversation labels'
SELECT llm_chat('acme', NULL, 'Resuma o pedido 123 em uma frase.',
                '{"agent": "resumidor", "conversation_id": "c-42"}') AS answer;
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'Diga olá.', '{"channel": "web"}') AS answer;

\echo
\echo '-- 4. The same question again: answered from the cache, at no cost'
SELECT r ->> 'cached' AS cached, r -> 'usage' ->> 'cost_usd' AS cost_usd,
       r -> 'usage' ->> 'saved_usd' AS saved_usd, r ->> 'latency_ms' AS latency_ms
  FROM llm_complete('acme', 'openai/gpt-4o-mini',
         '[{"role": "system", "content": "Você é um atendente."},
           {"role": "user", "content": "Qual o horário de funcionamento?"}]',
         '{"agent": "atendente", "channel": "whatsapp", "max_tokens": 100}') r;
RESET ROLE;

\echo
\echo '-- 5. A fallback: the "assistant" alias prefers a provider that is down (connection refused)'
SELECT llm_provider_set('primary-down', 'openai', '{"base_url": "http://127.0.0.1:1/v1", "api_key": "unused"}') ->> 'name' AS provider;
SELECT llm_model_set('demo/primary', 'primary-down',
         '{"upstream_model": "gpt-4o-mini", "input_usd_per_mtok": 0.15, "output_usd_per_mtok": 0.60}') ->> 'model' AS model;
SELECT llm_route_set('assistant', '{"models": ["demo/primary"], "fallback": ["openai/gpt-4o-mini"], "retries": 1}')
       - 'created_at' - 'updated_at' AS route;
SET ROLE acme_app;
SELECT a ->> 'attempt' AS attempt, a ->> 'provider' AS provider, a ->> 'status' AS status,
       a ->> 'fallback' AS fallback, left(coalesce(a ->> 'error', a ->> 'fallback_reason'), 60) AS why
  FROM jsonb_array_elements(llm_complete('acme', 'assistant',
         '[{"role": "user", "content": "Preciso de ajuda com meu pedido."}]') -> 'attempts') a;

\echo
\echo '-- 6. A refusal: another tenant is not ours (SQLSTATE 42501)'
\set ON_ERROR_STOP 0
SELECT llm_chat('globex', 'openai/gpt-4o-mini', 'hi');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\echo
\echo '-- 7. A provider error reaches the caller as its own SQLSTATE (mock only: HTTP 429 -> LG021)'
\if :mock
SET llm_gateway.max_retries = 0;   -- otherwise the gateway retries after the retry-after
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'busy? [[mock:status=429]][[mock:retry_after=2]]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\else
\echo '(skipped against the real API)'
\endif
\set ON_ERROR_STOP 1

\echo
\echo '-- 8. Spend is never lost: a call whose transaction rolls back is still in the ledger'
BEGIN;
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'Esta transação será desfeita.',
                '{"agent": "rollback-demo"}') AS answer;
ROLLBACK;
RESET ROLE;
SELECT llm_maintenance() -> 'spend' AS "worker pass (waits for the worker)";

\echo
\echo '-- 9. A budget: 0.0003 USD a day, alerts at 50% and 80%; calls until it refuses one (LG040)'
LISTEN llm_gateway_alerts;
SELECT llm_budget_set('acme', 0.0003, 'usd', 'daily', '{"thresholds": [0.5, 0.8]}')
       - 'id' - 'enabled' - 'webhook' AS budget;
SET ROLE acme_app;
DO $$
DECLARE
    n int := 0;
BEGIN
    WHILE n < 100 LOOP
        PERFORM llm_chat('acme', 'openai/gpt-4o-mini', 'Mais uma pergunta, a ' || n || 'ª.',
                         '{"max_tokens": 50, "agent": "budget-demo"}');
        n := n + 1;
    END LOOP;
EXCEPTION WHEN SQLSTATE 'LG040' THEN
    RAISE NOTICE 'call % refused: %', n + 1, SQLERRM;
END
$$;
RESET ROLE;
\echo '-- the worker writes the alerts and NOTIFYs llm_gateway_alerts (llm_maintenance() does it now):'
SELECT llm_maintenance() IS NOT NULL AS alerts_written;
SELECT type, threshold, message FROM llm_gateway.alerts ORDER BY id;
SELECT b ->> 'unit' AS unit, b ->> 'period' AS period, b ->> 'limit' AS "limit", b ->> 'used' AS used,
       b ->> 'percent' AS percent, b ->> 'projection' AS projection, b ->> 'state' AS state
  FROM jsonb_array_elements(llm_budget_status('acme') -> 'budgets') b;

\echo
\echo '-- 10. The usage ledger: one row per attempt, tokens, cost in USD, who wrote it'
SELECT id, tenant, agent, requested_model AS asked, provider, status, input_tokens AS "in",
       output_tokens AS "out", cost_usd, cached, was_fallback AS fallback, written_by
  FROM llm_gateway.usage WHERE agent IS DISTINCT FROM 'budget-demo' ORDER BY id;

\echo
\echo '-- Provider status, as the router sees it'
SELECT provider, status, circuit, requests_1m, errors_1m FROM llm_providers_status();

\echo
\echo '-- 11. Spend per tenant and model'
SELECT tenant, model, count(*) AS calls, sum(input_tokens + output_tokens) AS tokens,
       sum(cost_usd) AS cost_usd
  FROM llm_gateway.usage GROUP BY 1, 2 ORDER BY 1, 2;

\echo
\echo '-- 12. Analytics: the worker rolls the ledger up (llm_maintenance() does it now); a dashboard asks'
SELECT llm_maintenance() IS NOT NULL AS pass_done;
SELECT rolled_up_to, rows_rolled_up, passes FROM llm_gateway.rollup_state;
WITH s AS (SELECT llm_usage_summary('acme', 'today') AS s)
SELECT s -> 'totals' ->> 'requests' AS requests, s -> 'totals' ->> 'success_rate' AS success_rate,
       s -> 'totals' ->> 'tokens' AS tokens, s -> 'totals' ->> 'cost_usd' AS cost_usd,
       s -> 'totals' ->> 'p95_latency_ms' AS p95_ms, s -> 'totals' ->> 'fallbacks' AS fallbacks,
       s -> 'cache' ->> 'hit_rate' AS cache_hit_rate,
       s -> 'budget' ->> 'percent' AS budget_percent, s -> 'budget' ->> 'projection' AS projection
  FROM s;
SELECT llm_usage_summary('acme', 'today') -> 'budget' AS budget;
SELECT k AS model, v ->> 'requests' AS requests, v ->> 'successes' AS answered,
       v ->> 'cost_usd' AS cost_usd, v ->> 'avg_latency_ms' AS avg_ms
  FROM jsonb_each(llm_usage_summary('acme', 'today') -> 'by_model') AS e(k, v) ORDER BY k;
SELECT day, tenant, requests, tokens, cost_usd, cache_hits FROM llm_gateway.usage_by_tenant ORDER BY tenant;
\echo '-- the same for billing, as CSV (first lines):'
\set QUIET on
\pset format unaligned
\pset tuples_only on
SELECT l FROM llm_usage_export('acme', now() - interval '1 day', now() + interval '1 minute') l LIMIT 3;
\pset tuples_only off
\pset format aligned
\set QUIET off
