-- The script make demo runs against its throwaway cluster.
\pset footer off
\echo
\echo '-- 1. Install, point the "openai" provider at the upstream (the key is stored sealed), create a tenant'
CREATE EXTENSION llm_gateway;
SELECT llm_provider_set('openai', 'openai',
           jsonb_build_object('base_url', :'base_url', 'api_key', :'api_key'))
       ->> 'api_key_set' AS key_stored_sealed;
CREATE ROLE acme_app LOGIN;
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
\echo '-- 4. A refusal: another tenant is not ours (SQLSTATE 42501)'
\set ON_ERROR_STOP 0
SELECT llm_chat('globex', 'openai/gpt-4o-mini', 'hi');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\echo
\echo '-- 5. A provider error reaches the caller as its own SQLSTATE (mock only: HTTP 429 -> LG021)'
\if :mock
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'busy? [[mock:status=429]][[mock:retry_after=2]]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\else
\echo '(skipped against the real API)'
\endif
\set ON_ERROR_STOP 1

\echo
\echo '-- 6. Spend is never lost: a call whose transaction rolls back is still in the ledger'
BEGIN;
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'Esta transação será desfeita.',
                '{"agent": "rollback-demo"}') AS answer;
ROLLBACK;
RESET ROLE;
SELECT llm_maintenance() -> 'spend' AS "worker pass (waits for the worker)";

\echo
\echo '-- 7. The usage ledger: one row per attempt, tokens, cost in USD, who wrote it'
SELECT id, tenant, agent, channel, model, status, input_tokens AS "in",
       cached_tokens AS cached, output_tokens AS "out", cost_usd, latency_ms, written_by
  FROM llm_gateway.usage ORDER BY id;

\echo
\echo '-- 8. Spend per tenant and model'
SELECT tenant, model, count(*) AS calls, sum(input_tokens + output_tokens) AS tokens,
       sum(cost_usd) AS cost_usd
  FROM llm_gateway.usage GROUP BY 1, 2 ORDER BY 1, 2;
