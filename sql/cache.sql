-- cache: exact-match response cache, per tenant by default.
SET llm_gateway.cache = on;
\set m4 'openai/gpt-4o-mini'
CREATE FUNCTION test_ask(tenant text, prompt text, options jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE sql AS $$
    SELECT llm_complete(tenant, 'openai/gpt-4o-mini',
             jsonb_build_array(jsonb_build_object('role', 'user', 'content', prompt)), options)
$$;
CREATE FUNCTION test_hit(tenant text, prompt text, options jsonb DEFAULT '{}')
RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN (test_ask(tenant, prompt, options) ->> 'cached')::boolean THEN 'hit' ELSE 'miss' END
$$;

-- A miss, then a hit: the stored answer, cost 0, and what it saved.
SELECT r ->> 'cached' AS cached, r -> 'usage' ->> 'cost_usd' AS cost_usd
  FROM test_ask('acme', 'Qual o horário?') r;
SELECT r ->> 'cached' AS cached, r ->> 'content' AS content, r -> 'usage' AS usage,
       jsonb_array_length(r -> 'attempts') AS attempts
  FROM test_ask('acme', 'Qual o horário?') r;
SELECT cached, cost_usd, input_tokens, output_tokens, saved_tokens, saved_usd, provider, status
  FROM llm_gateway.usage ORDER BY id DESC LIMIT 1;

-- Everything that changes the answer changes the key...
SELECT test_hit('acme', 'Qual o horário?', '{"temperature": 0.2}') AS temperature,
       test_hit('acme', 'Qual o horário?', '{"max_tokens": 50}') AS max_tokens,
       test_hit('acme', 'Qual o horário?', '{"top_p": 0.5}') AS top_p,
       test_hit('acme', 'Qual o horário?', '{"stop": ["x"]}') AS stop,
       test_hit('acme', 'Qual o horário? ') AS text;
SELECT (llm_complete('acme', :'m4', '[{"role": "system", "content": "s"}, {"role": "user", "content": "Qual o horário?"}]')
        ->> 'cached') AS with_system_message;
-- ... and nothing else does
SELECT test_hit('acme', 'Qual o horário?', '{"agent": "bot", "channel": "web", "metadata": {"k": 1}, "timeout_ms": 5000}') AS labels;

-- bypass: neither read nor written
SELECT test_hit('acme', 'bypassed', '{"cache": "bypass"}') AS bypass, test_hit('acme', 'bypassed') AS then_default;
-- refresh: not read, but written anew
SELECT hits AS hits_before FROM llm_gateway.cache WHERE content = 'mock answer: bypassed';
SELECT test_hit('acme', 'bypassed') AS hit;
SELECT test_hit('acme', 'bypassed', '{"cache": "refresh"}') AS refresh;
SELECT count(*) AS entries, max(hits) AS hits_after_refresh FROM llm_gateway.cache WHERE content = 'mock answer: bypassed';

-- TTL: the option, then the setting; 0 means not stored
SELECT test_hit('acme', 'short-lived', '{"cache_ttl_s": 1}') AS first, test_hit('acme', 'short-lived') AS second;
SELECT pg_sleep(1.1);
SELECT test_hit('acme', 'short-lived') AS after_ttl;
SELECT test_hit('acme', 'never stored', '{"cache_ttl_s": 0}') AS first, test_hit('acme', 'never stored') AS second;

-- Only complete, successful answers are stored
SELECT test_hit('acme', 'cut short', '{"max_tokens": 2}') AS truncated, test_hit('acme', 'cut short', '{"max_tokens": 2}') AS again;
SELECT llm_chat('acme', :'m4', 'fails [[mock:status=500]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'fails [[mock:status=500]]');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS error_entries FROM llm_gateway.cache WHERE content LIKE '%fails%';

-- Tenants do not see each other's entries...
SELECT llm_tenant_set('iso_a', '{"members": ["public"]}') ->> 'tenant', llm_tenant_set('iso_b', '{"members": ["public"]}') ->> 'tenant';
SELECT test_hit('iso_a', 'a secret question') AS a_first, test_hit('iso_b', 'a secret question') AS b_first,
       test_hit('iso_a', 'a secret question') AS a_second;
-- ... unless both share the "shared" scope; "off" never caches
SELECT llm_tenant_set('shr_a', '{"members": ["public"], "cache_scope": "shared"}') ->> 'cache_scope',
       llm_tenant_set('shr_b', '{"members": ["public"], "cache_scope": "shared"}') ->> 'cache_scope',
       llm_tenant_set('nocache', '{"members": ["public"], "cache_scope": "off"}') ->> 'cache_scope';
SELECT test_hit('shr_a', 'a common question') AS a_first, test_hit('shr_b', 'a common question') AS b_first;
SELECT test_hit('nocache', 'x') AS first, test_hit('nocache', 'x') AS second;
SELECT scope, count(*) FROM llm_gateway.cache WHERE scope IN ('iso_a', 'iso_b', '*', 'nocache') GROUP BY 1 ORDER BY 1;

-- The key is the routed model: an alias of the same model finds the entry
SELECT llm_route_set('cheap-chat', '{"models": ["openai/gpt-4o-mini"]}') ->> 'name';
SELECT (llm_complete('acme', 'cheap-chat', '[{"role": "user", "content": "Qual o horário?"}]') ->> 'cached') AS via_alias;

-- The worker (here: llm_maintenance) drops expired entries, then the least
-- recently used beyond llm_gateway.cache_max_size.
SELECT llm_cache_purge('acme') > 0 AS purged;
SELECT test_hit('acme', 'big 1 [[mock:oversize=30000]]'), test_hit('acme', 'big 2 [[mock:oversize=30000]]'),
       test_hit('acme', 'big 3 [[mock:oversize=30000]]');
SELECT test_hit('acme', 'soon gone', '{"cache_ttl_s": 1}');
SELECT pg_sleep(1.1);
SET llm_gateway.cache_max_size = '64kB';
SELECT (llm_maintenance() ->> 'cache_evicted')::int >= 2 AS evicted_expired_and_lru;
SELECT count(*) AS entries, sum(bytes) <= 64 * 1024 AS within_bound FROM llm_gateway.cache WHERE scope = 'acme';
SELECT test_hit('acme', 'big 1 [[mock:oversize=30000]]') AS oldest, test_hit('acme', 'big 3 [[mock:oversize=30000]]') AS newest;
RESET llm_gateway.cache_max_size;

-- Switched off for everyone
SET llm_gateway.cache = off;
SELECT test_hit('acme', 'Qual o horário?') AS first, test_hit('acme', 'Qual o horário?') AS second;
RESET llm_gateway.cache;

-- Non-admins neither read the cache nor purge it
CREATE ROLE lg_cache_app;
SET ROLE lg_cache_app;
SELECT count(*) FROM llm_gateway.cache;
\echo :LAST_ERROR_SQLSTATE
SELECT llm_cache_purge();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
