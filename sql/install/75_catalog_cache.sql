-- llm_gateway install script, part 75_catalog_cache.sql (see 00_schema.sql)

---------------------------------------------------------------------------
-- Backends keep what the catalog says about a tenant, agent and model
-- (catalog_cache.c).  A change to any table that answer is read from tells
-- every backend when it commits.
---------------------------------------------------------------------------

CREATE FUNCTION llm_gateway.config_changed()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'llm_gateway_config_changed';
COMMENT ON FUNCTION llm_gateway.config_changed() IS
    'Trigger of the configuration tables: backends reload their catalog cache after the commit';

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['providers', 'models', 'routes', 'plans', 'tenants',
                             'tenant_members', 'agents', 'budgets', 'exchange_rates'] LOOP
        -- per row, so that a statement that changes nothing (the worker's
        -- periodic UPDATEs, say) leaves every cache alone
        EXECUTE format('CREATE TRIGGER config_changed'
                       ' AFTER INSERT OR UPDATE OR DELETE ON llm_gateway.%I'
                       ' FOR EACH ROW EXECUTE FUNCTION llm_gateway.config_changed()', t);
        EXECUTE format('CREATE TRIGGER config_truncated'
                       ' AFTER TRUNCATE ON llm_gateway.%I'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION llm_gateway.config_changed()', t);
    END LOOP;
END
$$;
