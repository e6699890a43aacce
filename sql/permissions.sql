-- permissions: tenants are isolated, administration is for llm_gateway_admin,
-- and keys are never readable by anyone else.
CREATE ROLE lg_app_a;
CREATE ROLE lg_app_b;
CREATE ROLE lg_team;
CREATE ROLE lg_team_member IN ROLE lg_team;
CREATE ROLE lg_ops IN ROLE llm_gateway_admin;

SELECT llm_tenant_set('tenant_a', '{"members": ["lg_app_a", "lg_team"]}') -> 'members';
SELECT llm_tenant_set('tenant_b', '{"members": ["lg_app_b"]}') -> 'members';

-- A member acts for its tenant, not for another one.
SET ROLE lg_app_a;
SELECT llm_chat('tenant_a', 'openai/gpt-4o-mini', 'as a');
SELECT llm_chat('tenant_b', 'openai/gpt-4o-mini', 'as a, spending b');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Membership is inherited through role membership.
SET ROLE lg_team_member;
SELECT llm_chat('tenant_a', 'openai/gpt-4o-mini', 'as a team member');
RESET ROLE;

-- Non-admins read no configuration and no key, and of the ledger only the
-- rows of the tenants they act for (tenant_a here; tenants whose member is
-- "public" are everybody's)...
SET ROLE lg_app_a;
SELECT api_key_enc FROM llm_gateway.providers;
\echo :LAST_ERROR_SQLSTATE
SELECT DISTINCT tenant FROM llm_gateway.usage
 WHERE tenant IN ('tenant_a', 'tenant_b', 'tenant_c') ORDER BY 1;
SELECT llm_gateway.secret_encrypt('x', 'y');
\echo :LAST_ERROR_SQLSTATE
-- ...and administer nothing.
SELECT llm_provider_set('openai', NULL, '{"base_url": "http://attacker.example/v1"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_tenant_set('tenant_a', '{"members": ["lg_app_b"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_model_set('openai/gpt-4o-mini', 'openai', '{"input_usd_per_mtok": 0}');
\echo :LAST_ERROR_SQLSTATE
-- A caller's own objects cannot stand in for the extension's: a temp table
-- named like the ledger, and a function shadowing one the lookups use.
CREATE TEMP TABLE usage (id bigint);
RESET ROLE;
CREATE SCHEMA evil;
CREATE FUNCTION evil.jsonb_each_text(jsonb, OUT key text, OUT value text) RETURNS SETOF record
    LANGUAGE sql AS $$ SELECT 'X-Custom-Injected', 'yes' $$;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
SET ROLE lg_app_a;
SET search_path = evil, pg_catalog, public;
SELECT llm_chat('tenant_a', 'openai/gpt-4o-mini', 'no hijack [[mock:echo]]')::jsonb -> 'headers' ? 'x-custom-injected' AS hijacked;
SELECT count(*) AS own_usage_rows FROM pg_temp.usage;
RESET search_path;
RESET ROLE;
DROP SCHEMA evil CASCADE;

-- An administrator configures, reads the ledger and sees keys only sealed.
SET ROLE lg_ops;
SELECT llm_tenant_set('tenant_c', '{"members": ["lg_app_b"]}') ->> 'tenant';
SELECT name, api_key_enc IS NOT NULL AS sealed_key_present,
       position(convert_to('sk-mock', 'UTF8') IN api_key_enc) AS plaintext_at
  FROM llm_gateway.providers WHERE name = 'openai';
SELECT count(*) > 0 AS reads_ledger FROM llm_gateway.usage;
SELECT llm_chat('tenant_b', 'openai/gpt-4o-mini', 'admins may act for any tenant');
RESET ROLE;

-- A member of tenant_c only is refused for tenant_a.
SET ROLE lg_app_b;
SELECT llm_chat('tenant_c', 'openai/gpt-4o-mini', 'as b for c');
SELECT llm_complete('tenant_a', 'openai/gpt-4o-mini', '[{"role": "user", "content": "x"}]');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- "public" opens a tenant to every role.
SET ROLE lg_app_b;
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'acme is public');
RESET ROLE;

SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;
SELECT tenant, count(*) FROM llm_gateway.usage
 WHERE tenant IN ('tenant_a', 'tenant_b', 'tenant_c') GROUP BY 1 ORDER BY 1;
