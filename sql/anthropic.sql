-- anthropic: the Messages protocol, exactly as the service wants it.
\set sonnet 'anthropic/claude-3-5-sonnet-20241022'
SELECT llm_provider_set('anthropic', 'anthropic',
           jsonb_build_object('base_url', current_setting('mock.url'),
                              'api_key', current_setting('mock.api_key'),
                              'breaker_failures', 1000)) ->> 'kind';

-- System text moves to "system" (every system message, joined), runs of one
-- role are merged, max_tokens comes from the model when the call sets none,
-- stop becomes stop_sequences; the key travels in x-api-key.
SELECT jsonb_pretty((llm_complete('acme', :'sonnet',
         '[{"role": "system", "content": "Você é um atendente."},
           {"role": "user", "content": "Olá"},
           {"role": "user", "content": "Qual o horário?"},
           {"role": "assistant", "content": "Das 8h às 18h."},
           {"role": "system", "content": "Seja breve."},
           {"role": "user", "content": "E no sábado? [[mock:echo]]"}]',
         '{"temperature": 0.5, "top_p": 0.9, "stop": ["FIM"]}') ->> 'content')::jsonb
       - 'headers');
SELECT (llm_chat('acme', :'sonnet', 'hi [[mock:echo]]')::jsonb) -> 'headers';
SELECT (llm_chat('acme', :'sonnet', 'hi [[mock:echo]]', '{"max_tokens": 100}')::jsonb) -> 'body' -> 'max_tokens';

-- The answer is every text block, in order (the mock splits it in two).
SELECT r ->> 'content' AS content, r ->> 'finish_reason' AS finish_reason,
       r ->> 'upstream_model' AS upstream_model, r ->> 'provider_request_id' LIKE 'msg_mock_%' AS msg_id
  FROM llm_complete('acme', :'sonnet', '[{"role": "user", "content": "Conte até três."}]') r;
SELECT llm_complete('acme', :'sonnet', '[{"role": "user", "content": "a long answer"}]',
                    '{"max_tokens": 2}') ->> 'finish_reason' AS truncated;

-- Token semantics: cache reads and writes are additive to input_tokens.
--   1000 × 3.00 + 2048 × 0.30 + 512 × 3.75 + 200 × 15.00 = 8534.4 USD/Mtok
SELECT r -> 'usage' AS usage
  FROM llm_complete('acme', :'sonnet',
        '[{"role": "user", "content": "p [[mock:usage=1000,200]][[mock:cached=2048]][[mock:cache_write=512]]"}]') r;
SELECT input_tokens, cached_tokens, cache_write_tokens, output_tokens, cost_usd,
       cost_usd = ((input_tokens - cached_tokens - cache_write_tokens) * 3.00 + cached_tokens * 0.30
                   + cache_write_tokens * 3.75 + output_tokens * 15.00) / 1000000 AS recomputed
  FROM llm_gateway.usage ORDER BY id DESC LIMIT 1;

-- What the Messages API cannot take is refused before any call.
SELECT llm_complete('acme', :'sonnet', '[{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "u"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_complete('acme', :'sonnet', '[{"role": "user", "content": "u"}]', '{"temperature": 1.5}');
\echo :LAST_ERROR_SQLSTATE

-- Anthropic's errors, with its own words.
SELECT llm_chat('acme', :'sonnet', 'x [[mock:status=400]][[mock:message=max_tokens: Field required]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'sonnet', 'x [[mock:status=401]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'sonnet', 'x [[mock:status=429]][[mock:retry_after=30]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'sonnet', 'x [[mock:status=529]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'sonnet', 'x [[mock:status=500]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'sonnet', 'x [[mock:wrong_shape]]');
\echo :LAST_ERROR_SQLSTATE
