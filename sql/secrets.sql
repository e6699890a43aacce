-- secrets: API keys from the server's environment or a file, never in SQL;
-- master-key rotation; which URLs the gateway may send requests to.
\set VERBOSITY terse

-- A key named by an environment variable of the server (the harness starts
-- the server with LG_REGRESS_API_KEY set to the mock's key).
SELECT llm_provider_set('envkey', 'openai',
         jsonb_build_object('base_url', current_setting('mock.url') || '/v1',
                            'api_key_env', 'LG_REGRESS_API_KEY'))
       - 'created_at' - 'updated_at' - 'base_url';
SELECT llm_model_set('test/envkey', 'envkey',
         '{"upstream_model": "gpt-4o-mini", "input_usd_per_mtok": 0, "output_usd_per_mtok": 0}') ->> 'model';
SELECT llm_chat('acme', 'test/envkey', 'key from the environment');
-- the catalog holds the name only
SELECT api_key_enc IS NULL AS nothing_sealed, api_key_env, api_key_file
  FROM llm_gateway.providers WHERE name = 'envkey';

-- A variable the server does not have: a warning now, LG052 at the call.
SELECT llm_provider_set('envkey', NULL, '{"api_key_env": "LG_NO_SUCH_VARIABLE"}') ->> 'key_source';
SELECT llm_chat('acme', 'test/envkey', 'x');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT llm_chat('acme', 'test/envkey', 'x');
\set VERBOSITY terse
-- not a variable name
SELECT llm_provider_set('envkey', NULL, '{"api_key_env": "A-B"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('envkey', NULL, '{"api_key_env": ""}');
\echo :LAST_ERROR_SQLSTATE
-- only one source at a time
SELECT llm_provider_set('envkey', NULL, '{"api_key_env": "LG_REGRESS_API_KEY", "api_key": "sk-x"}');
\echo :LAST_ERROR_SQLSTATE
-- the table refuses two sources even when written directly
UPDATE llm_gateway.providers SET api_key_enc = '\x00' WHERE name = 'envkey';
\echo :LAST_ERROR_SQLSTATE

-- A key in a file private to the server, read at each call.
SELECT current_setting('data_directory') || '/lg_api.key' AS key_path \gset
COPY (SELECT current_setting('mock.api_key')) TO PROGRAM 'cat > lg_api.key && chmod 600 lg_api.key';
SELECT llm_provider_set('envkey', NULL, jsonb_build_object('api_key_file', :'key_path'))
       ->> 'key_source' AS key_source;
SELECT api_key_env IS NULL AS env_cleared, api_key_file = :'key_path' AS file_set
  FROM llm_gateway.providers WHERE name = 'envkey';
SELECT llm_chat('acme', 'test/envkey', 'key from a file');
-- a new key in the file is used at the next call (the mock refuses this one)
COPY (SELECT 'sk-rotated-by-hand') TO PROGRAM 'cat > lg_api.key';
SELECT llm_chat('acme', 'test/envkey', 'x');
\echo :LAST_ERROR_SQLSTATE
COPY (SELECT current_setting('mock.api_key')) TO PROGRAM 'cat > lg_api.key';
SELECT llm_chat('acme', 'test/envkey', 'the right key again');
-- readable by others: refused
COPY (SELECT 1) TO PROGRAM 'cat > /dev/null; chmod 644 lg_api.key';
SELECT llm_chat('acme', 'test/envkey', 'x');
\echo :LAST_ERROR_SQLSTATE
-- a key with a space or a control character would break the header
COPY (SELECT 'sk-mock 0123') TO PROGRAM 'cat > lg_api.key && chmod 600 lg_api.key';
SELECT llm_chat('acme', 'test/envkey', 'x');
\echo :LAST_ERROR_SQLSTATE
-- empty, then missing
COPY (SELECT 1) TO PROGRAM 'cat > /dev/null; : > lg_api.key';
SELECT llm_chat('acme', 'test/envkey', 'x');
\echo :LAST_ERROR_SQLSTATE
COPY (SELECT 1) TO PROGRAM 'cat > /dev/null; rm -f lg_api.key';
SELECT llm_chat('acme', 'test/envkey', 'x');
\echo :LAST_ERROR_SQLSTATE
-- a missing file is a warning at configuration time, not a refusal
SELECT llm_provider_set('envkey', NULL, jsonb_build_object('api_key_file', :'key_path')) ->> 'key_source';
SELECT llm_provider_set('envkey', NULL, '{"api_key_file": "relative/path"}');
\echo :LAST_ERROR_SQLSTATE
-- a sealed key replaces the file; null removes every source
SELECT llm_provider_set('envkey', NULL, jsonb_build_object('api_key', current_setting('mock.api_key')))
       ->> 'key_source' AS key_source;
SELECT api_key_file IS NULL AS file_cleared FROM llm_gateway.providers WHERE name = 'envkey';
SELECT llm_chat('acme', 'test/envkey', 'sealed again');
SELECT llm_provider_set('envkey', NULL, '{"api_key": null}') ->> 'api_key_set' AS api_key_set;
SELECT llm_provider_delete('envkey');

-- Rotating the master key: the old one as previous_master_key, then every
-- stored key re-sealed; calls keep working at every step.
SELECT count(*) AS sealed_keys FROM llm_gateway.providers WHERE api_key_enc IS NOT NULL \gset
CREATE TEMP TABLE sealed_before AS SELECT name, api_key_enc FROM llm_gateway.providers WHERE api_key_enc IS NOT NULL;
ALTER SYSTEM SET llm_gateway.previous_master_key = 'regress-master-key-0123456789';
ALTER SYSTEM SET llm_gateway.master_key = 'regress-master-key-rotated';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SHOW llm_gateway.previous_master_key;
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'old key, new master key');
SELECT (r ->> 'rotated')::int = :sealed_keys AS all_rotated, r -> 'current' AS current, r -> 'unreadable' AS unreadable
  FROM llm_rotate_master_key() r;
SELECT count(*) = :sealed_keys AS all_resealed FROM llm_gateway.providers p JOIN sealed_before b USING (name)
 WHERE p.api_key_enc <> b.api_key_enc;
-- idempotent
SELECT (r ->> 'current')::int = :sealed_keys AS all_current, r -> 'rotated' AS rotated
  FROM llm_rotate_master_key() r;
ALTER SYSTEM RESET llm_gateway.previous_master_key;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'new master key alone');
-- a key sealed under neither key is reported, not fatal
SELECT llm_provider_set('stranger', 'openai', jsonb_build_object('base_url', current_setting('mock.url') || '/v1')) ->> 'name';
UPDATE llm_gateway.providers SET api_key_enc = b.api_key_enc
  FROM sealed_before b WHERE b.name = 'openai' AND providers.name = 'stranger';
SELECT r -> 'unreadable' AS unreadable FROM llm_rotate_master_key() r;
SELECT llm_provider_delete('stranger');
-- only administrators rotate
CREATE ROLE lg_sec_nobody;
SET ROLE lg_sec_nobody;
SELECT llm_rotate_master_key();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE lg_sec_nobody;
-- and back to the harness's key
ALTER SYSTEM SET llm_gateway.previous_master_key = 'regress-master-key-rotated';
ALTER SYSTEM RESET llm_gateway.master_key;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT (r ->> 'rotated')::int = :sealed_keys AS all_rotated_back FROM llm_rotate_master_key() r;
ALTER SYSTEM RESET llm_gateway.previous_master_key;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'the harness key again');

-- URLs: only http and https, plain http only to loopback and the hosts
-- llm_gateway.allowed_http_hosts lists.
SELECT llm_provider_set('remote', 'openai', '{"base_url": "http://llm.example.com/v1"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('remote', 'openai', '{"base_url": "ftp://llm.example.com/v1"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_provider_set('remote', 'openai', '{"base_url": "https://llm.example.com/v1"}') ->> 'base_url';
SELECT llm_provider_set('remote', 'openai', '{"base_url": "http://localhost:8000/v1"}') ->> 'base_url';
SELECT llm_provider_set('remote', 'openai', '{"base_url": "http://[::1]:8000/v1"}') ->> 'base_url';
SELECT llm_provider_set('remote', 'openai', '{"base_url": "http://127.1.2.3/v1"}') ->> 'base_url';
SELECT llm_provider_set('remote', 'openai', '{"base_url": "http://127.0.0.1.example.com/v1"}');
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET llm_gateway.allowed_http_hosts = 'vllm.internal, LLM.example.com';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT llm_provider_set('remote', 'openai', '{"base_url": "http://llm.example.com:8080/v1"}') ->> 'base_url';
SELECT llm_model_set('test/remote', 'remote', '{"input_usd_per_mtok": 0, "output_usd_per_mtok": 0}') ->> 'model';
-- the host leaves the list: refused at the call, before anything is sent
ALTER SYSTEM RESET llm_gateway.allowed_http_hosts;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT llm_chat('acme', 'test/remote', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS ledger_rows FROM llm_gateway.usage WHERE provider = 'remote';
SELECT llm_provider_delete('remote');
-- budget webhooks follow the same rule
SELECT llm_budget_set('acme', 100, 'usd', 'monthly', '{"webhook": "http://hooks.example.com/x"}');
\echo :LAST_ERROR_SQLSTATE
