-- gemini: the generateContent protocol, exactly as the service wants it.
\set flash 'google/gemini-2.0-flash'
SELECT llm_provider_set('google', 'gemini',
           jsonb_build_object('base_url', current_setting('mock.url'),
                              'api_key', current_setting('mock.api_key'),
                              'breaker_failures', 1000)) ->> 'kind';

-- Roles user and model, runs merged, system text in systemInstruction,
-- options in generationConfig; the model in the path, the key only in the
-- x-goog-api-key header (never in the URL).
SELECT jsonb_pretty((llm_complete('acme', :'flash',
         '[{"role": "system", "content": "Você é um atendente."},
           {"role": "user", "content": "Olá"},
           {"role": "assistant", "content": "Olá! Como posso ajudar?"},
           {"role": "assistant", "content": "Temos promoções hoje."},
           {"role": "user", "content": "Qual o horário? [[mock:echo]]"}]',
         '{"temperature": 0.2, "max_tokens": 64, "top_p": 0.95, "stop": "FIM"}') ->> 'content')::jsonb
       - 'headers');
SELECT (llm_chat('acme', :'flash', 'hi [[mock:echo]]')::jsonb) -> 'headers';
SELECT (llm_chat('acme', :'flash', 'no options [[mock:echo]]')::jsonb) -> 'body';

-- The answer is every part of the first candidate, in order.
SELECT r ->> 'content' AS content, r ->> 'finish_reason' AS finish_reason,
       r ->> 'upstream_model' AS upstream_model
  FROM llm_complete('acme', :'flash', '[{"role": "user", "content": "Conte até três."}]') r;
SELECT llm_complete('acme', :'flash', '[{"role": "user", "content": "a long answer"}]',
                    '{"max_tokens": 2}') ->> 'finish_reason' AS truncated;
SELECT r ->> 'content' IS NULL AS no_content, r ->> 'finish_reason' AS finish_reason
  FROM llm_complete('acme', :'flash', '[{"role": "user", "content": "x [[mock:null_content]]"}]') r;

-- Token semantics: promptTokenCount includes the cached tokens, and thoughts
-- are billed as output.
--   (4796 - 4096) × 0.10 + 4096 × 0.025 + (77 + 100) × 0.40 = 243.2 USD/Mtok
SELECT r -> 'usage' AS usage
  FROM llm_complete('acme', :'flash',
        '[{"role": "user", "content": "p [[mock:usage=4796,77]][[mock:cached=4096]][[mock:reasoning=100]]"}]') r;
SELECT input_tokens, cached_tokens, reasoning_tokens, output_tokens, cost_usd
  FROM llm_gateway.usage ORDER BY id DESC LIMIT 1;

-- Gemini's errors, with its own words.
SELECT llm_chat('acme', :'flash', 'x [[mock:status=400]][[mock:message=Invalid JSON payload received.]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'flash', 'x [[mock:status=403]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'flash', 'x [[mock:status=429]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'flash', 'x [[mock:status=503]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('acme', :'flash', 'x [[mock:malformed]]');
\echo :LAST_ERROR_SQLSTATE
