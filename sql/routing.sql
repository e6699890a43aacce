-- routing: routes, strategies, retries, fallback, circuit breakers, limits
-- and provider status.  Every provider here points at the mock; a directive
-- in a base URL (".../mock:status=503/v1") makes that provider fail.
SET llm_gateway.retry_backoff_ms = 1;
\set SHOW_CONTEXT never
\set VERBOSITY default

CREATE FUNCTION test_provider(name text, directive text DEFAULT NULL, extra jsonb DEFAULT '{}')
RETURNS text LANGUAGE sql AS $$
    SELECT llm_provider_set(name, 'openai',
             jsonb_build_object('base_url', current_setting('mock.url')
                                  || coalesce('/mock:' || directive, '') || '/v1',
                                'api_key', current_setting('mock.api_key')) || extra) ->> 'name'
$$;
CREATE FUNCTION test_model(model text, provider text, config jsonb DEFAULT '{}')
RETURNS text LANGUAGE sql AS $$
    SELECT llm_model_set(model, provider,
             '{"upstream_model": "gpt-4o-mini", "input_usd_per_mtok": 1,
               "output_usd_per_mtok": 2}'::jsonb || config) ->> 'provider'
$$;
-- n calls with distinct prompts; which provider answered, how often
CREATE FUNCTION test_spread(model text, n int)
RETURNS TABLE (provider text, calls bigint) LANGUAGE sql AS $$
    SELECT llm_complete('acme', model,
             jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'spread ' || i)))
           ->> 'provider', count(*)
      FROM generate_series(1, n) i GROUP BY 1 ORDER BY 1
$$;

SELECT test_provider('r1'), test_provider('r2'), test_provider('r3');
SELECT test_model('rt/chat', 'r1', '{"priority": 1, "weight": 3}'),
       test_model('rt/chat', 'r2', '{"priority": 2, "weight": 1, "input_usd_per_mtok": 0.5, "output_usd_per_mtok": 1}'),
       test_model('rt/chat', 'r3', '{"priority": 3, "weight": 1, "input_usd_per_mtok": 5, "output_usd_per_mtok": 5}');

-- llm_route_set refuses what cannot work
SELECT llm_route_set('rt/chat', '{"strategy": "random"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_route_set('chat-alias');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_route_set('chat-alias', '{"models": ["no/such-model"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_route_set('default', '{"models": ["rt/chat"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_route_set('rt/chat', '{"retries": 11}');
\echo :LAST_ERROR_SQLSTATE

-- priority: the lowest priority number, every time
SELECT llm_route_set('rt/chat', '{"strategy": "priority"}');
SELECT * FROM test_spread('rt/chat', 10);

-- weighted 3:1:1, smooth round-robin: exactly in proportion over 50 calls
SELECT llm_route_set('rt/chat', '{"strategy": "weighted"}') ->> 'strategy';
SELECT * FROM test_spread('rt/chat', 50);

-- lowest_cost: the cheapest deployment for this request
SELECT llm_route_set('rt/chat', '{"strategy": "lowest_cost"}') ->> 'strategy';
SELECT * FROM test_spread('rt/chat', 10);

-- lowest_latency: each deployment is measured once, then the fastest wins
SELECT test_provider('rslow', 'slow_ms=40');
SELECT test_model('rt/lat', 'rslow', '{"priority": 1}'), test_model('rt/lat', 'r2', '{"priority": 2}');
SELECT llm_route_set('rt/lat', '{"strategy": "lowest_latency"}') ->> 'strategy';
SELECT * FROM test_spread('rt/lat', 10);

-- least_busy with nothing in flight: a tie, broken by priority
SELECT llm_route_set('rt/chat', '{"strategy": "least_busy"}') ->> 'strategy';
SELECT * FROM test_spread('rt/chat', 5);

-- An alias with a fallback chain.  rbad always answers 503: it is retried
-- (the route's retries), then the call falls back to rt/chat.
SELECT test_provider('rbad', 'status=503', '{"breaker_failures": 1000}');
SELECT test_model('rt/bad', 'rbad');
SELECT llm_route_set('rt/chat', '{"strategy": "priority"}') ->> 'strategy';
SELECT llm_route_set('support', '{"models": ["rt/bad"], "fallback": ["rt/chat"], "retries": 1}')
       - 'created_at' - 'updated_at';
SELECT llm_complete('acme', 'support', '[{"role": "user", "content": "fallback please"}]') AS r \gset
SELECT :'r'::jsonb ->> 'provider' AS provider, :'r'::jsonb -> 'fallback' AS fallback,
       :'r'::jsonb ->> 'model' AS model;
SELECT a ->> 'attempt' AS attempt, a ->> 'provider' AS provider, a ->> 'status' AS status,
       a ->> 'http_status' AS http, a ->> 'fallback' AS fallback, a ->> 'fallback_reason' AS reason
  FROM jsonb_array_elements(:'r'::jsonb -> 'attempts') a;
-- every attempt is a ledger row, numbered, with the alias asked for
SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;
SELECT attempt, provider, model, requested_model, status, was_fallback, fallback_reason
  FROM llm_gateway.usage WHERE request_id = (:'r'::jsonb ->> 'id')::uuid ORDER BY attempt;

-- "fallback": false keeps the call on the first deployment
SELECT llm_complete('acme', 'support', '[{"role": "user", "content": "no fallback"}]', '{"fallback": false}');
\echo :LAST_ERROR_SQLSTATE

-- 400: the request is wrong, so neither a retry nor a fallback
SELECT test_provider('r400', 'status=400', '{"breaker_failures": 1000}');
SELECT test_model('rt/400', 'r400');
SELECT llm_route_set('rt/400', '{"fallback": ["rt/chat"], "retries": 2}') ->> 'name';
SELECT llm_chat('acme', 'rt/400', 'bad request');
\echo :LAST_ERROR_SQLSTATE
-- 401: no retry on the same deployment, but another provider may do
SELECT test_provider('r401', 'status=401', '{"breaker_failures": 1000}');
SELECT test_model('rt/401', 'r401');
SELECT llm_route_set('rt/401', '{"fallback": ["rt/chat"], "retries": 2}') ->> 'name';
SELECT jsonb_path_query_array(llm_complete('acme', 'rt/401', '[{"role": "user", "content": "bad key"}]'),
                              '$.attempts[*].provider') AS attempts;

-- 429 with retry-after: waited for when short enough, then fallback
SELECT test_provider('r429', 'status=429/mock:retry_after=1', '{"breaker_failures": 1000}');
SELECT test_model('rt/429', 'r429');
SELECT llm_route_set('rt/429', '{"fallback": ["rt/chat"], "retries": 1}') ->> 'name';
SET llm_gateway.retry_after_max_ms = 2000;
SELECT clock_timestamp() AS t0 \gset
SELECT jsonb_path_query_array(llm_complete('acme', 'rt/429', '[{"role": "user", "content": "busy"}]'),
                              '$.attempts[*].provider') AS attempts;
SELECT clock_timestamp() - :'t0'::timestamptz >= interval '1 second' AS waited_retry_after;
-- ... and not waited for when longer than llm_gateway.retry_after_max_ms
SET llm_gateway.retry_after_max_ms = 500;
SELECT jsonb_path_query_array(llm_complete('acme', 'rt/429', '[{"role": "user", "content": "busy again"}]'),
                              '$.attempts[*].provider') AS attempts;
RESET llm_gateway.retry_after_max_ms;

-- 529, a timeout, a refused connection: transient, then fallback
SELECT test_provider('r529', 'status=529', '{"breaker_failures": 1000}');
SELECT test_provider('rslow2', 'slow_ms=5000', '{"breaker_failures": 1000, "timeout_ms": 200}');
SELECT llm_provider_set('rdown', 'openai', '{"base_url": "http://127.0.0.1:1/v1", "breaker_failures": 1000}') ->> 'name';
SELECT test_model('rt/flaky', 'r529', '{"priority": 1}'), test_model('rt/flaky', 'rslow2', '{"priority": 2}'),
       test_model('rt/flaky', 'rdown', '{"priority": 3}'), test_model('rt/flaky', 'r2', '{"priority": 4}');
SELECT llm_route_set('rt/flaky', '{"retries": 0}') ->> 'name';
SELECT a ->> 'provider' AS provider, a ->> 'status' AS status, a ->> 'fallback' AS fallback
  FROM jsonb_array_elements(llm_complete('acme', 'rt/flaky', '[{"role": "user", "content": "flaky"}]') -> 'attempts') a;

-- Context length exceeded: only a model with a larger context window is tried
SELECT test_provider('rctx', 'status=400/mock:code=context_length_exceeded', '{"breaker_failures": 1000}');
SELECT test_model('rt/small', 'rctx', '{"context_window": 1000}'),
       test_model('rt/small2', 'r1', '{"context_window": 1000}'),
       test_model('rt/big', 'r2', '{"context_window": 100000}');
SELECT llm_route_set('rt/small', '{"fallback": ["rt/small2", "rt/big"]}') ->> 'name';
SELECT llm_complete('acme', 'rt/small', '[{"role": "user", "content": "a long document"}]') AS r \gset
SELECT :'r'::jsonb ->> 'model' AS answered_by, :'r'::jsonb -> 'skipped' AS skipped;

-- All fail: every attempt and why, in one error
SELECT test_model('rt/doomed', 'r529', '{"priority": 1}'), test_model('rt/doomed', 'rbad', '{"priority": 2}');
SELECT llm_route_set('rt/doomed', '{"retries": 0}') ->> 'name';
SELECT llm_chat('acme', 'rt/doomed', 'doomed');
\echo :LAST_ERROR_SQLSTATE

-- The circuit breaker: 2 failures open it, the cool-down half-opens it,
-- 2 successful probes close it, a failed probe opens it again.
SELECT test_provider('rbrk', 'status=500', '{"breaker_failures": 2, "breaker_cooldown_ms": 300, "breaker_successes": 2}');
SELECT test_model('rt/brk', 'rbrk', '{"priority": 1}'), test_model('rt/brk', 'r2', '{"priority": 2}');
SELECT llm_route_set('rt/brk', '{"retries": 0}') ->> 'name';
CREATE FUNCTION test_brk(prompt text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(a ->> 'provider' || ':' || (a ->> 'status'), ' ' ORDER BY (a ->> 'attempt')::int)
           || coalesce(' skipped ' || (r -> 'skipped' -> 0 ->> 'provider') || ' ('
                       || (r -> 'skipped' -> 0 ->> 'reason') || ')', '')
      FROM llm_complete('acme', 'rt/brk', jsonb_build_array(jsonb_build_object('role', 'user', 'content', prompt))) r,
           jsonb_array_elements(r -> 'attempts') a GROUP BY r
$$;
SELECT test_brk('1'), test_brk('2'), test_brk('3');
SELECT provider, status, circuit, consecutive_failures FROM llm_providers_status() WHERE provider = 'rbrk';
SELECT test_provider('rbrk');   -- the provider recovers
SELECT test_brk('4');            -- still open: cooling down
SELECT pg_sleep(0.4);
SELECT test_brk('5');            -- half-open: a probe, which succeeds
SELECT provider, status, circuit FROM llm_providers_status() WHERE provider = 'rbrk';
SELECT test_brk('6');            -- the second successful probe closes it
SELECT provider, status, circuit FROM llm_providers_status() WHERE provider = 'rbrk';
SELECT test_provider('rbrk', 'status=500');
SELECT test_brk('7'), test_brk('8');  -- open again
SELECT pg_sleep(0.4);
SELECT test_brk('9');            -- the probe fails: open again
SELECT provider, status, circuit FROM llm_providers_status() WHERE provider = 'rbrk';
-- every change is in provider_events (the worker writes them)
SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;
SELECT from_status, to_status, reason FROM llm_gateway.provider_events
 WHERE provider = 'rbrk' ORDER BY id;

-- Client errors (4xx) never count against the breaker
SELECT test_provider('r4xx', 'status=400', '{"breaker_failures": 2}');
SELECT test_model('rt/4xx', 'r4xx');
\set VERBOSITY terse
SELECT llm_chat('acme', 'rt/4xx', 'bad 1');
SELECT llm_chat('acme', 'rt/4xx', 'bad 2');
SELECT llm_chat('acme', 'rt/4xx', 'bad 3');
\set VERBOSITY default
SELECT provider, circuit, consecutive_failures, errors_1m FROM llm_providers_status() WHERE provider = 'r4xx';

-- Requests per minute, exact: the fourth call in the minute finds no provider
SELECT test_provider('rrpm', NULL, '{"rpm": 3}');
SELECT test_model('rt/rpm', 'rrpm');
SELECT llm_chat('acme', 'rt/rpm', 'rpm ' || i) FROM generate_series(1, 3) i;
SELECT llm_chat('acme', 'rt/rpm', 'rpm 4');
\echo :LAST_ERROR_SQLSTATE
SELECT provider, status, requests_1m, rpm FROM llm_providers_status() WHERE provider = 'rrpm';

-- Tokens per minute: admission counts the worst case (prompt estimate +
-- max_tokens), then the tokens the provider reported replace it.  Each call
-- here uses 40 tokens and is estimated at 21 (a 26-byte prompt, max_tokens
-- 10): after three calls (120 tokens), the fourth cannot fit in 110.
SELECT test_provider('rtpm', NULL, '{"tpm": 110}');
SELECT test_model('rt/tpm', 'rtpm');
SELECT llm_chat('acme', 'rt/tpm', 'tpm ' || i || ' [[mock:usage=30,10]]', '{"max_tokens": 10}')
  FROM generate_series(1, 3) i;
SELECT llm_chat('acme', 'rt/tpm', 'tpm 4 [[mock:usage=30,10]]', '{"max_tokens": 10}');
\echo :LAST_ERROR_SQLSTATE
SELECT provider, status, tokens_1m, tpm FROM llm_providers_status() WHERE provider = 'rtpm';

-- Operators take a provider out of service; the change is recorded
SELECT llm_provider_set('r3', NULL, '{"status": "maintenance"}') ->> 'status';
SELECT test_model('rt/r3only', 'r3');
SELECT llm_chat('acme', 'rt/r3only', 'anyone?');
\echo :LAST_ERROR_SQLSTATE
SELECT from_status, to_status, reason LIKE 'set by %' AS by_operator FROM llm_gateway.provider_events
 WHERE provider = 'r3';
SELECT llm_provider_set('r3', NULL, '{"status": "paused"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('r3', NULL, '{"status": "active"}') ->> 'status';

-- The "default" route gives every model without a route its fallback chain
SELECT test_model('rt/lonely', 'rbad');
SELECT llm_chat('acme', 'rt/lonely', 'alone');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_route_set('default', '{"fallback": ["rt/chat"], "retries": 0}') - 'created_at' - 'updated_at';
SELECT llm_complete('acme', 'rt/lonely', '[{"role": "user", "content": "not alone"}]') ->> 'provider';
SELECT llm_route_delete('default'), llm_route_delete('default');

-- A tenant restricted to some models never falls back to others
SELECT llm_tenant_set('strict', '{"members": ["public"], "allowed_models": ["support"]}') ->> 'tenant';
SELECT llm_chat('strict', 'support', 'restricted');
\echo :LAST_ERROR_SQLSTATE

-- llm_health: a summary for dashboards
SELECT jsonb_object_keys(llm_health()) AS keys ORDER BY 1;
SELECT llm_health() -> 'worker' AS worker;
