-- validation: every refusal of bad arguments, each with its SQLSTATE,
-- before any provider is called.
\set m4 'openai/gpt-4o-mini'
SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;
SELECT count(*) AS rows_before FROM llm_gateway.usage \gset

-- messages
SELECT llm_complete('acme', :'m4', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '{"role": "user", "content": "hi"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '"hi"');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '["hi"]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[{"role": "user", "content": "hi"}, 42]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[{"content": "hi"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[{"role": "user"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[{"role": "tool", "content": "hi"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[{"role": 1, "content": "hi"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[{"role": "user", "content": 42}]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[{"role": "user", "content": [{"type": "text", "text": "hi"}]}]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[{"role": "user", "content": null}]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[{"role": "user", "content": "hi", "name": "bob"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[{"role": "system", "content": "You are terse."}]');
\echo :LAST_ERROR_SQLSTATE
SET llm_gateway.max_request_size = '1kB';
SELECT llm_complete('acme', :'m4',
       jsonb_build_array(jsonb_build_object('role', 'user', 'content', repeat('x', 2000))));
\echo :LAST_ERROR_SQLSTATE
RESET llm_gateway.max_request_size;
SELECT llm_chat('acme', :'m4', NULL);
\echo :LAST_ERROR_SQLSTATE

-- options
\set ok '[{"role": "user", "content": "hi"}]'
SELECT llm_complete('acme', :'m4', :'ok', '[]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"max_token": 10}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"temperature": 2.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"temperature": "hot"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"top_p": 1.01}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"max_tokens": 0}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"max_tokens": 12.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"max_tokens": -1}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"max_tokens": 1e300}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"max_tokens": true}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"max_tokens": 20000}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"stop": ["a", "b", "c", "d", "e"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"stop": ["a", 1]}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"stop": []}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"agent": ""}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', jsonb_build_object('channel', repeat('c', 300)));
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"session_id": 42}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"metadata": [1, 2]}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"cache": "sometimes"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"cache_ttl_s": -5}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"timeout_ms": 0}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"fallback": "no"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"idempotency_key": 7}');
\echo :LAST_ERROR_SQLSTATE

-- tenant and model
SELECT llm_complete(NULL, :'m4', :'ok');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('', :'m4', :'ok');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('nobody', :'m4', :'ok');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', 'openai/gpt-9', :'ok');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', NULL, :'ok');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', 'groq/llama-3.3-70b-versatile', :'ok');
\echo :LAST_ERROR_SQLSTATE

SELECT llm_tenant_set('limited', '{"members": ["public"], "allowed_models": ["openai/gpt-4o"], "default_model": "openai/gpt-4o"}') ->> 'tenant';
SELECT llm_complete('limited', :'m4', :'ok');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('limited', NULL, '[{"role": "user", "content": "default model"}]') ->> 'model';
SELECT llm_tenant_set('limited', '{"allowed_models": ["openai/*"]}') ->> 'tenant';
SELECT llm_complete('limited', :'m4', '[{"role": "user", "content": "glob"}]') ->> 'model';
SELECT llm_tenant_set('limited', '{"active": false}') ->> 'active';
SELECT llm_complete('limited', :'m4', :'ok');
\echo :LAST_ERROR_SQLSTATE

-- the global switch
SET llm_gateway.enabled = off;
SELECT llm_complete('acme', :'m4', :'ok');
\echo :LAST_ERROR_SQLSTATE
RESET llm_gateway.enabled;

-- a read-only transaction could not record the spend: refused up front
BEGIN READ ONLY;
SELECT llm_complete('acme', :'m4', :'ok');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- only the two successful calls of "limited" reached the ledger
SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;
SELECT count(*) - :rows_before AS new_rows FROM llm_gateway.usage;
