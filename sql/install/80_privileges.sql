-- llm_gateway install script, part 80_privileges.sql (see 00_schema.sql)

REVOKE ALL ON FUNCTION @extschema@.llm_provider_set(text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_provider_delete(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_model_set(text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_model_delete(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_tenant_set(text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_tenant_delete(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_route_set(text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_route_delete(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_cache_purge(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_rotate_master_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.llm_rotate_master_key() TO llm_gateway_admin;
GRANT EXECUTE ON FUNCTION @extschema@.llm_route_set(text, jsonb) TO llm_gateway_admin;
GRANT EXECUTE ON FUNCTION @extschema@.llm_route_delete(text) TO llm_gateway_admin;
GRANT EXECUTE ON FUNCTION @extschema@.llm_cache_purge(text) TO llm_gateway_admin;
GRANT EXECUTE ON FUNCTION @extschema@.llm_provider_set(text, text, jsonb) TO llm_gateway_admin;
GRANT EXECUTE ON FUNCTION @extschema@.llm_provider_delete(text) TO llm_gateway_admin;
GRANT EXECUTE ON FUNCTION @extschema@.llm_model_set(text, text, jsonb) TO llm_gateway_admin;
GRANT EXECUTE ON FUNCTION @extschema@.llm_model_delete(text, text) TO llm_gateway_admin;
GRANT EXECUTE ON FUNCTION @extschema@.llm_tenant_set(text, jsonb) TO llm_gateway_admin;
GRANT EXECUTE ON FUNCTION @extschema@.llm_tenant_delete(text) TO llm_gateway_admin;

-- Administrators read everything (API keys only in sealed form).
GRANT SELECT ON ALL TABLES IN SCHEMA llm_gateway TO llm_gateway_admin;

DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'llm_budget_set(text, numeric, text, text, jsonb)', 'llm_budget_delete(bigint)',
        'llm_plan_set(text, jsonb)', 'llm_plan_delete(text)',
        'llm_agent_set(text, text, jsonb)', 'llm_agent_delete(text, text)',
        'llm_exchange_rate_set(text, numeric)',
        'llm_content_erase(text, timestamptz)'] LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION @extschema@.%s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION @extschema@.%s TO llm_gateway_admin', f);
    END LOOP;
END
$$;
-- llm_usage_summary and llm_usage_export run with the caller's rights and
-- check the tenant themselves: executable by everyone (PUBLIC by default).
