-- complete: the happy path, the exact request sent, and the ledger row.
\set m4 'openai/gpt-4o-mini'

-- The contract's result shape.
SELECT r - 'id' - 'latency_ms' - 'usage_id' - 'attempts' AS result,
       r ->> 'id' ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS uuid_id,
       (r ->> 'latency_ms')::numeric >= 0 AS has_latency,
       jsonb_array_length(r -> 'attempts') AS attempts,
       r #- '{attempts,0,latency_ms}' -> 'attempts' -> 0 AS attempt
  FROM llm_complete('acme', :'m4',
        '[{"role": "system", "content": "Você é um atendente."},
          {"role": "user", "content": "Qual o horário?"}]') AS r;

-- The ledger row of that call.
SELECT tenant, model, provider, upstream_model, status, http_status, error_code,
       input_tokens, cached_tokens, output_tokens, reasoning_tokens, cost_usd,
       finish_reason, provider_request_id, usage_estimated, cached, was_fallback
  FROM llm_gateway.usage ORDER BY id DESC LIMIT 1;

-- usage_id points at it
SELECT llm_complete('acme', :'m4', '[{"role": "user", "content": "again"}]') AS r \gset
SELECT u.id = (:'r'::jsonb ->> 'usage_id')::bigint AS usage_id_matches,
       u.request_id = (:'r'::jsonb ->> 'id')::uuid AS request_id_matches
  FROM llm_gateway.usage u ORDER BY id DESC LIMIT 1;

-- llm_chat: one user message, the text back
SELECT llm_chat('acme', :'m4', 'Olá, tudo bem? ✓ "quotes" \ back\slash');

-- Exactly what the provider received: model, messages in order, only the
-- options that were set (temperature kept as written), stop as an array,
-- the bearer key, and no other top-level field.
SELECT jsonb_pretty(llm_chat('acme', :'m4', 'show me [[mock:echo]]',
         '{"temperature": 0.7, "max_tokens": 50, "top_p": 1, "stop": "END"}')::jsonb);
SELECT (llm_complete('acme', :'m4',
         '[{"role": "system", "content": "s"}, {"role": "user", "content": "u1"},
           {"role": "assistant", "content": "a1"}, {"role": "user", "content": "line\nbreak\ttab \"q\" [[mock:echo]]"}]')
        ->> 'content')::jsonb -> 'body';

-- Labels and metadata go to the ledger row.
SELECT (llm_complete('acme', :'m4', '[{"role": "user", "content": "labelled"}]',
          '{"agent": "support-bot", "channel": "whatsapp", "session_id": "s-1",
            "conversation_id": "c-9", "metadata": {"ticket": 123}}') ->> 'content');
SELECT agent, channel, session_id, conversation_id, metadata
  FROM llm_gateway.usage ORDER BY id DESC LIMIT 1;

-- A model with no text (a refusal), a truncated answer, no usage reported.
SELECT r ->> 'content' IS NULL AS no_content, r ->> 'finish_reason' AS finish
  FROM llm_complete('acme', :'m4', '[{"role": "user", "content": "x [[mock:null_content]]"}]') r;
SELECT llm_chat('acme', :'m4', 'a long answer please', '{"max_tokens": 2}');
SELECT r -> 'usage' -> 'estimated' AS estimated, (r -> 'usage' ->> 'input_tokens')::int > 0 AS counted
  FROM llm_complete('acme', :'m4', '[{"role": "user", "content": "n [[mock:no_usage]]"}]') r;

-- Replies the protocol allows: chunked, gzip-compressed, extra fields.
SELECT llm_chat('acme', :'m4', 'c [[mock:chunked]]');
SELECT llm_chat('acme', :'m4', 'g [[mock:gzip]]');

-- An OpenAI-compatible endpoint under a path prefix (Groq style), with
-- extra headers, and its own deployment of a registry model.
SELECT llm_provider_set('groq', 'openai',
         jsonb_build_object('base_url', current_setting('mock.url') || '/openai/v1',
                            'api_key', current_setting('mock.api_key'),
                            'headers', '{"X-Custom-Team": "billing"}'::jsonb)) ->> 'kind';
SELECT (llm_chat('acme', 'groq/llama-3.3-70b-versatile', 'hi [[mock:echo]]')::jsonb)
       - 'body' AS request;

-- Azure OpenAI: deployment URL, api-version, api-key header, no model field.
SELECT llm_provider_set('azure', 'azure_openai',
         jsonb_build_object('base_url', current_setting('mock.url'),
                            'api_key', current_setting('mock.api_key'))) ->> 'kind';
SELECT llm_model_set('openai/gpt-4o', 'azure', '{"upstream_model": "prod gpt4o"}')
       - 'created_at' - 'updated_at';
SELECT llm_model_set('openai/gpt-4o', 'openai', '{"enabled": false}') ->> 'enabled';
SELECT llm_chat('acme', 'openai/gpt-4o', 'hi [[mock:echo]]')::jsonb - 'headers';
SELECT (llm_chat('acme', 'openai/gpt-4o', 'hi [[mock:echo]]')::jsonb) -> 'headers' -> 'api-key';
SELECT llm_provider_set('azure', NULL, '{"api_version": "2025-01-01-preview"}') ->> 'api_version';
SELECT llm_chat('acme', 'openai/gpt-4o', 'hi [[mock:echo]]')::jsonb ->> 'query';
SELECT provider, upstream_model, status FROM llm_gateway.usage ORDER BY id DESC LIMIT 1;
SELECT llm_model_delete('openai/gpt-4o', 'openai');
SELECT llm_model_delete('openai/gpt-4o', 'azure');

-- A provider without a key sends no credentials (vLLM, Ollama): the mock,
-- like the real service, refuses.
SELECT llm_provider_set('keyless', 'openai',
         jsonb_build_object('base_url', current_setting('mock.url') || '/v1')) ->> 'api_key_set';
SELECT llm_model_set('local/llama', 'keyless', '{"upstream_model": "llama3", "input_usd_per_mtok": 0, "output_usd_per_mtok": 0}') ->> 'upstream_model';
SELECT llm_chat('acme', 'local/llama', 'hi');
\echo :LAST_ERROR_SQLSTATE

-- Every call above left exactly one ledger row: the successes in their own
-- transaction, the failures through the worker (llm_maintenance() waits for
-- it to finish).
SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;
SELECT status, written_by, count(*) FROM llm_gateway.usage WHERE tenant = 'acme'
 GROUP BY 1, 2 ORDER BY 1, 2;
