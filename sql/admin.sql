\set SHOW_CONTEXT never
-- admin: llm_provider_set, llm_model_set, llm_tenant_set and their checks.

-- providers: defaults per kind, partial updates, normalisation
SELECT llm_provider_set('oai2', 'openai') - 'created_at' - 'updated_at';
SELECT llm_provider_set('oai2', NULL, '{"base_url": "https://api.example.com/v1/", "priority": 5, "rpm": 100}')
       - 'created_at' - 'updated_at';
SELECT llm_provider_set('oai2', NULL, '{"enabled": false}') ->> 'priority' AS priority_kept;
SELECT llm_provider_set('claude', 'anthropic') ->> 'base_url';
SELECT llm_provider_set('gem', 'gemini') ->> 'base_url';
SELECT llm_provider_delete('oai2'), llm_provider_delete('oai2');
SELECT llm_provider_delete('claude'), llm_provider_delete('gem');

-- provider refusals
SELECT llm_provider_set('Bad Name', 'openai');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('x', 'bedrock');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('x', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('x', 'azure_openai');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('x', 'openai', '{"base_url": "ftp://example.com"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('x', 'openai', '{"base_url": "https://user:sk-secret@example.com/v1"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('x', 'openai', '{"base_url": "https://example.com/v1?key=1"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('x', 'openai', '{"apikey": "sk-1", "timeout": 5}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('x', 'openai', '{"api_key": 12345}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('x', 'openai', '{"api_key": "sk with space"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('x', 'openai', '{"timeout_ms": 10}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('x', 'openai', '{"weight": 1.5}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('x', 'openai', '{"enabled": "yes"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('x', 'openai', '{"headers": {"Authorization": "Bearer sk-1"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('x', 'openai', '{"headers": {"X-Ok": "a\r\nInjected: 1"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('x', 'openai', '[]');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS providers_named_x FROM llm_gateway.providers WHERE name = 'x';

-- models: builtin rows shadowed by user rows, prices copied, checks
SELECT model, provider, builtin, input_usd_per_mtok, output_usd_per_mtok,
       cached_input_usd_per_mtok, cache_write_usd_per_mtok, context_window, max_output_tokens
  FROM llm_gateway.deployments ORDER BY model, provider;
SELECT llm_model_set('acme/custom', 'openai', '{"input_usd_per_mtok": 1.5, "output_usd_per_mtok": 2}')
       - 'created_at' - 'updated_at';
SELECT llm_model_set('acme/custom', 'openai', '{"max_output_tokens": 100, "priority": 1}')
       - 'created_at' - 'updated_at';
SELECT llm_model_set('acme/priceless', 'openai');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_model_set('acme/custom', 'ghost');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_model_set('acme/custom', 'openai', '{"input_usd_per_mtok": 0.0000001}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_model_set('acme/custom', 'openai', '{"input_usd_per_mtok": -1}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_model_set('acme/custom', 'openai', '{"input_usd_per_mtok": "1.5"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_model_set('bad model id', 'openai');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_model_set('acme/custom', 'openai', '{"context": 1}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_model_delete('acme/custom', 'openai'), llm_model_delete('acme/custom', 'openai');
SELECT llm_model_delete('openai/gpt-4o', 'openai');
\echo :LAST_ERROR_SQLSTATE

-- tenants (plans first: a tenant names an existing plan)
SELECT llm_plan_set('pro') ->> 'plan', llm_plan_set('enterprise') ->> 'plan';
SELECT llm_tenant_set('globex', '{"plan": "freemium"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_tenant_set('globex', '{"name": "Globex", "plan": "pro", "rpm": 60, "timezone": "America/Sao_Paulo",
                                  "allowed_models": ["openai/*"], "default_model": "openai/gpt-4o-mini",
                                  "metadata": {"crm_id": 7}}')
       - 'created_at' - 'updated_at';
SELECT llm_tenant_set('globex', '{"plan": "enterprise"}') ->> 'name' AS name_kept;
SELECT llm_tenant_set('globex', '{"allowed_models": null}') -> 'allowed_models';
SELECT llm_tenant_set('globex', '{"members": ["nosuchrole", "public"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_tenant_set('globex', '{"timezone": "Mars/Olympus"}');
\echo :LAST_ERROR_SQLSTATE
-- a currency needs a rate (BRL has the default fallback rate)
SELECT llm_tenant_set('globex', '{"currency": "XYZ"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_tenant_set('globex', '{"currency": "brl"}') ->> 'currency' AS currency;
SELECT llm_tenant_set('globex', '{"currency": "USD"}') ->> 'currency' AS currency;
SELECT llm_tenant_set('globex', '{"default_model": "openai/gpt-9"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_tenant_set('globex', '{"rpm": 0}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_tenant_set('globex', '{"allowed_models": "openai/*"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_tenant_set(E'bad\ttenant');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_tenant_delete('globex'), llm_tenant_delete('globex');

-- pg_dump keeps the configuration and the ledger, but not the builtin rows
SELECT c.relname, x.cond
  FROM pg_extension e,
       unnest(e.extconfig, e.extcondition) AS x(oid, cond)
  JOIN pg_class c ON c.oid = x.oid
 WHERE e.extname = 'llm_gateway' ORDER BY 1;
