-- crypto: API keys are sealed with AES-256-GCM under the master key.

-- The stored bytes do not contain the key, and have the sealed layout:
-- version 1 | key id (4) | nonce (12) | ciphertext | tag (16).
SELECT position(convert_to(current_setting('mock.api_key'), 'UTF8') IN api_key_enc) AS key_found_at,
       get_byte(api_key_enc, 0) AS version,
       length(api_key_enc) - length(current_setting('mock.api_key')) AS overhead
  FROM llm_gateway.providers WHERE name = 'openai';

-- Sealing the same key twice gives different bytes (random nonce).
SELECT llm_gateway.secret_encrypt('sk-same', 'provider:a') <> llm_gateway.secret_encrypt('sk-same', 'provider:a') AS nonce_differs;

-- The key works: the mock accepts it.
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'key check');

-- A sealed key moved onto another provider's row does not open.
SELECT llm_provider_set('copycat', 'openai', jsonb_build_object('base_url', current_setting('mock.url') || '/v1')) ->> 'name';
UPDATE llm_gateway.providers SET api_key_enc = (SELECT api_key_enc FROM llm_gateway.providers WHERE name = 'openai')
 WHERE name = 'copycat';
SELECT llm_model_set('test/copycat', 'copycat', '{"input_usd_per_mtok": 0, "output_usd_per_mtok": 0}') ->> 'model';
SELECT llm_chat('acme', 'test/copycat', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_delete('copycat');

-- The master key is never shown, not even to a superuser.
SHOW llm_gateway.master_key;
SELECT setting FROM pg_settings WHERE name = 'llm_gateway.master_key';

-- Without a master key, keys can neither be opened nor stored.
ALTER SYSTEM SET llm_gateway.master_key = '';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SHOW llm_gateway.master_key;
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('x', 'openai', '{"api_key": "sk-new"}');
\echo :LAST_ERROR_SQLSTATE

-- Under another master key, the stored key is recognised as foreign.
ALTER SYSTEM SET llm_gateway.master_key = 'some-other-master-key';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'x');
\echo :LAST_ERROR_SQLSTATE

-- The master key can come from a file private to the server instead.
COPY (SELECT 'regress-master-key-0123456789') TO PROGRAM 'cat > lg_master.key && chmod 600 lg_master.key';
ALTER SYSTEM SET llm_gateway.master_key = '';
ALTER SYSTEM SET llm_gateway.master_key_file = 'lg_master.key';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'key from file');
COPY (SELECT 1) TO PROGRAM 'cat > /dev/null; chmod 644 lg_master.key';
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'x');
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET llm_gateway.master_key_file = 'no_such.key';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'x');
\echo :LAST_ERROR_SQLSTATE

ALTER SYSTEM RESET llm_gateway.master_key;
ALTER SYSTEM RESET llm_gateway.master_key_file;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'back to the configured key');
