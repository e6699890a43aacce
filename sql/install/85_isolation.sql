-- llm_gateway install script, part 85_isolation.sql (see 00_schema.sql)

---------------------------------------------------------------------------
-- Tenant isolation
--
-- A role acts for a tenant if it is a member (tenant_members, through role
-- membership too, or "public") or an administrator.  Members read their own
-- tenants' rows of the tenant-facing tables, and nothing else: row-level
-- security filters usage, budgets, alerts, agents and tenants, and the
-- columns that may hold secrets (webhook URLs) are not granted at all.
-- Provider keys, plans, routes and other tenants' rows stay out of reach.
---------------------------------------------------------------------------

-- The tenants the current role may act for (all of them for admins).  C,
-- not SECURITY DEFINER: it must see the caller's role; it reads the member
-- lists as the extension's owner.
CREATE FUNCTION llm_gateway.member_tenants()
RETURNS text[]
LANGUAGE C STABLE PARALLEL RESTRICTED   -- switches user: the leader only
AS 'MODULE_PATHNAME', 'llm_gateway_member_tenants';
COMMENT ON FUNCTION llm_gateway.member_tenants() IS
    'The tenants the current role is a member of (row-level security uses it)';

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['usage', 'budgets', 'alerts', 'agents', 'tenants'] LOOP
        EXECUTE format('ALTER TABLE llm_gateway.%I ENABLE ROW LEVEL SECURITY', t);
        -- the InitPlan evaluates member_tenants() once per query, not per row
        EXECUTE format('CREATE POLICY members_read ON llm_gateway.%I FOR SELECT TO PUBLIC'
                       ' USING (tenant = ANY ((SELECT llm_gateway.member_tenants())::text[]))', t);
        EXECUTE format('CREATE POLICY admins_read ON llm_gateway.%I FOR SELECT'
                       ' TO llm_gateway_admin USING (true)', t);
    END LOOP;
END
$$;

GRANT USAGE ON SCHEMA llm_gateway TO PUBLIC;
GRANT SELECT ON llm_gateway.usage, llm_gateway.agents TO PUBLIC;
GRANT SELECT (tenant, name, plan, active, allowed_models, default_model, rpm, tpm, rpd, tpd,
              max_concurrency, currency, timezone, cache_scope, metadata, suspended_until,
              suspended_reason, created_at, updated_at)
    ON llm_gateway.tenants TO PUBLIC;
GRANT SELECT (id, tenant, agent, amount, unit, period, thresholds, threshold_style, at_limit,
              downgrade_model, suspend, enabled, created_at, updated_at)
    ON llm_gateway.budgets TO PUBLIC;
GRANT SELECT (id, created_at, type, tenant, agent, budget_id, threshold, used, limit_value, unit,
              percent, period_start, period_end, message, acknowledged_at, acknowledged_by,
              delivery_state, delivered_at)
    ON llm_gateway.alerts TO PUBLIC;

-- Nothing else in the schema runs for PUBLIC: every helper is revoked,
-- then the two the policies and members need are granted back.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA llm_gateway FROM PUBLIC;
GRANT EXECUTE ON FUNCTION llm_gateway.member_tenants() TO PUBLIC;
GRANT EXECUTE ON FUNCTION llm_gateway.period_bounds(text, text, timestamptz) TO PUBLIC;
