-- llm_gateway install script, part 85_isolation.sql (see 00_schema.sql)

---------------------------------------------------------------------------
-- Tenant isolation
--
-- A role acts for a tenant if it is a member (tenant_members, through role
-- membership too, or "public") or an administrator.  Members read their own
-- tenants' rows of the tenant-facing tables, and nothing else: row-level
-- security filters usage, the stored texts, its rollups, budgets, budget periods, alerts,
-- agents and tenants (and the dashboard views, which read with the
-- reader's rights), and the columns that may hold secrets (webhook URLs)
-- are not granted at all.
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
    FOREACH t IN ARRAY ARRAY['usage', 'usage_content', 'budgets', 'alerts', 'agents', 'tenants',
                             'usage_hourly', 'usage_daily', 'budget_periods'] LOOP
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
GRANT SELECT ON llm_gateway.usage, llm_gateway.usage_content, llm_gateway.agents, llm_gateway.usage_hourly,
                llm_gateway.usage_daily, llm_gateway.budget_periods, llm_gateway.rollup_state,
                llm_gateway.rollup_holes
    TO PUBLIC;
-- the dashboard views read with the reader's rights (security_invoker)
GRANT SELECT ON llm_gateway.usage_by_tenant, llm_gateway.cost_by_provider,
                llm_gateway.model_performance, llm_gateway.error_rate_hourly,
                llm_gateway.popular_models, llm_gateway.cache_stats_hourly,
                llm_gateway.recent_alerts
    TO PUBLIC;
GRANT SELECT (tenant, name, plan, active, allowed_models, default_model, rpm, tpm, rpd, tpd,
              max_concurrency, currency, timezone, timezone_since, cache_scope, privacy, metadata,
              suspended_until,
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
GRANT EXECUTE ON FUNCTION llm_gateway.require_tenant(text),
                          llm_gateway.usage_facts(text, timestamptz, timestamptz),
                          llm_gateway.hist_of(numeric),
                          llm_gateway.hist_accum(internal, numeric),
                          llm_gateway.hist_merge_step(internal, bigint[]),
                          llm_gateway.hist_final(internal),
                          llm_gateway.hist_add(bigint[], bigint[]),
                          llm_gateway.hist_percentile(bigint[], float8),
                          llm_gateway.latency_hist(numeric),
                          llm_gateway.hist_merge(bigint[]),
                          llm_gateway.csv(text),
                          llm_gateway.summary_window(text, text, timestamptz, timestamptz),
                          llm_gateway.breakdown_entry(numeric, numeric, numeric, numeric, numeric,
                                                      numeric, numeric, numeric, numeric, numeric,
                                                      boolean),
                          llm_gateway.pct_change(numeric, numeric)
    TO PUBLIC;
