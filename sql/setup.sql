-- setup: install the extension and point the builtin "openai" provider at
-- the mock provider the harness started (its URL is the mock.url setting of
-- the test configuration, so no port appears in the expected output).
CREATE EXTENSION llm_gateway;
SELECT extversion FROM pg_extension WHERE extname = 'llm_gateway';

-- The API functions live in the install schema and are callable unqualified.
SELECT p.oid::regprocedure
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public' AND p.proname LIKE 'llm\_%'
 ORDER BY 1::text;

SELECT llm_provider_set('openai', 'openai',
           jsonb_build_object('base_url', current_setting('mock.url') || '/v1',
                              'api_key', current_setting('mock.api_key')))
       - 'base_url' - 'created_at' - 'updated_at';

SELECT llm_tenant_set('acme', '{"name": "Acme", "members": ["public"]}')
       - 'created_at' - 'updated_at';
