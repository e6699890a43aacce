-- bad_input: a corpus of hostile and absurd input, from callers and from
-- providers.  Each gets its documented SQLSTATE, nothing is sent for a
-- refused argument, and the ledger stays consistent: one row per request a
-- provider saw, none pending, none for a refusal.
\set VERBOSITY terse
\set m4 'openai/gpt-4o-mini'
SELECT llm_provider_set('openai', NULL, '{"breaker_failures": 1000}') ->> 'breaker_failures';
SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;
SELECT coalesce(max(id), 0) AS last_id FROM llm_gateway.usage \gset

-- messages: deep nesting, where content must be a string
SELECT llm_complete('acme', :'m4',
       ('[{"role": "user", "content": ' || repeat('[', 5000) || '"x"' || repeat(']', 5000) || '}]')::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4',
       ('[{"role": "user", "content": "x", "extra": ' || repeat('{"a": ', 3000) || '1' || repeat('}', 3000) || '}]')::jsonb);
\echo :LAST_ERROR_SQLSTATE
-- a 10 MB string, above llm_gateway.max_request_size (8 MB)
SELECT llm_complete('acme', :'m4',
       jsonb_build_array(jsonb_build_object('role', 'user', 'content', repeat('x', 10 * 1024 * 1024))));
\echo :LAST_ERROR_SQLSTATE
-- many messages, each small, together too large
SELECT llm_complete('acme', :'m4',
       (SELECT jsonb_agg(jsonb_build_object('role', 'user', 'content', repeat('y', 1024))) FROM generate_series(1, 9000)));
\echo :LAST_ERROR_SQLSTATE
-- invalid escapes never become a jsonb value: PostgreSQL refuses the literal
SELECT llm_complete('acme', :'m4', '[{"role": "user", "content": "\ud800"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[{"role": "user", "content": "nul \u0000 here"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[{"role": "user", "content": "bad \x escape"}]');
\echo :LAST_ERROR_SQLSTATE
-- a valid surrogate pair and other unicode travel intact
SELECT llm_chat('acme', :'m4', 'emoji 😀 \ud83d\ude00 ünïcödé 日本語 ‮rtl');
-- non-object items, wrong roles
SELECT llm_complete('acme', :'m4', '[null]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[[{"role": "user", "content": "nested"}]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[{"role": "user", "content": "a"}, true]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[{"role": "USER", "content": "a"}]');
\echo :LAST_ERROR_SQLSTATE
-- nothing to say: refused, not billed
SELECT llm_complete('acme', :'m4', '[{"role": "user", "content": ""}]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[{"role": "system", "content": " "}, {"role": "user", "content": "\n\t "}]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', '[{"role": "user", "content": "a", "role": "system"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', '');
\echo :LAST_ERROR_SQLSTATE

-- absurd options
\set ok '[{"role": "user", "content": "hi"}]'
SELECT llm_complete('acme', :'m4', :'ok', '{"max_tokens": -2147483649}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"max_tokens": 99999999999999999999999}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"max_tokens": "10"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', jsonb_build_object('temperature', 'NaN'::float8));
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', jsonb_build_object('temperature', 'Infinity'::float8));
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"temperature": "NaN"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"temperature": -0.0000001}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"top_p": 1e-400}') ->> 'content';
SELECT llm_complete('acme', :'m4', :'ok', '{"timeout_ms": 1e12}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', jsonb_build_object('metadata', jsonb_build_object('k', repeat('m', 5000))));
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', jsonb_build_object('stop', jsonb_build_array(repeat('s', 100000))));
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', jsonb_build_object('stop', repeat('s', 1025)));
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '{"stop": ""}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', '"options"');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', 'null');
\echo :LAST_ERROR_SQLSTATE

-- tenant and model names that look like SQL, or are not ASCII
SELECT llm_chat('acme''; DROP TABLE llm_gateway.usage; --', :'m4', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', 'openai/gpt-4o-mini''); DELETE FROM llm_gateway.tenants; --', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', '%', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', 'openai/*', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat(repeat('t', 100000), :'m4', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', repeat('m', 100000), 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat(E'acme\n', :'m4', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_tenant_set('Café São Paulo 日本 😀', '{"members": ["public"]}') ->> 'tenant' AS unicode_tenant;
SELECT llm_chat('Café São Paulo 日本 😀', :'m4', 'unicode tenant');
SELECT tenant FROM llm_gateway.usage WHERE id > :last_id AND tenant LIKE 'Caf%';
SELECT llm_tenant_set('x''); DROP TABLE llm_gateway.usage; --', '{"members": ["public"]}') ->> 'tenant' AS sql_looking_tenant;
SELECT llm_chat('x''); DROP TABLE llm_gateway.usage; --', :'m4', 'still a name');
SELECT count(*) > 0 AS ledger_still_there FROM llm_gateway.usage;
SELECT llm_tenant_delete('Café São Paulo 日本 😀'), llm_tenant_delete('x''); DROP TABLE llm_gateway.usage; --');

-- NULL in every argument
SELECT llm_complete(NULL, :'m4', :'ok');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'m4', :'ok', NULL) ->> 'content' AS null_options;
SELECT llm_complete('acme', :'m4', 'null'::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat(NULL, :'m4', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'null options', NULL);
SELECT llm_complete('acme', :'m4', '[{"role": null, "content": "x"}]');
\echo :LAST_ERROR_SQLSTATE

SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;
SELECT count(*) AS rows_from_callers, count(*) FILTER (WHERE status = 'ok') AS ok
  FROM llm_gateway.usage WHERE id > :last_id;
SELECT coalesce(max(id), 0) AS last_id FROM llm_gateway.usage \gset

-- replies: truncated, empty, HTML, wrong content type, gzip, chunked, a
-- redirect to another host (never followed), a trickle past the timeout,
-- closed in the middle, too large
SELECT llm_chat('acme', :'m4', 'x [[mock:malformed]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:empty]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:status=500]][[mock:empty]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:html]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:html]][[mock:status=503]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'plain [[mock:text_plain]]');
SELECT llm_chat('acme', :'m4', 'zipped [[mock:gzip]]');
SELECT llm_chat('acme', :'m4', 'zipped and chunked [[mock:gzip]][[mock:chunked]]');
SELECT llm_chat('acme', :'m4', 'x [[mock:gzip]][[mock:malformed]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:redirect=http://198.51.100.7/elsewhere]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:redirect=/v1/chat/completions]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:trickle_ms=100]]', '{"timeout_ms": 300}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:close_mid]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:gzip]][[mock:close_mid]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:oversize=20000000]][[mock:gzip]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:wrong_shape]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'m4', 'x [[mock:null_content]]') IS NULL AS refusal_is_null;

-- every reply above left exactly one row, none pending, each failure with
-- its error code
SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;
SELECT status, error_code, count(*) FROM llm_gateway.usage WHERE id > :last_id
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS rows_without_cost FROM llm_gateway.usage WHERE id > :last_id AND cost_usd IS NULL;
SELECT llm_provider_set('openai', NULL, '{"breaker_failures": 5}') ->> 'breaker_failures';
