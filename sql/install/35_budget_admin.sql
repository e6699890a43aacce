-- llm_gateway install script, part 35_budget_admin.sql (see 00_schema.sql)

---------------------------------------------------------------------------
-- Administration of plans, agents, budgets and rates (llm_gateway_admin)
---------------------------------------------------------------------------

CREATE FUNCTION llm_gateway.budget_info(budget_id bigint)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_strip_nulls(to_jsonb(b) - 'created_at' - 'updated_at')
           || jsonb_build_object('webhook', b.webhook IS NOT NULL)
      FROM llm_gateway.budgets b WHERE b.id = budget_id
$$;

-- A budget's unit: usd, tokens, requests, or a currency with a known rate.
CREATE FUNCTION llm_gateway.budget_unit(unit text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u text := lower(btrim(coalesce(unit, 'usd')));
BEGIN
    IF u IN ('usd', 'tokens', 'requests') THEN
        RETURN u;
    END IF;
    IF u !~ '^[a-z]{3}$' THEN
        PERFORM llm_gateway.config_error('budget', format('unknown unit "%s"', left(unit, 64)),
            'Units are usd, a currency code such as brl, tokens and requests.');
    END IF;
    IF (llm_gateway.rate_for(u)).rate IS NULL THEN
        PERFORM llm_gateway.config_error('budget',
            format('there is no exchange rate for %s', upper(u)),
            format('Set one with llm_exchange_rate_set(''%s'', <units per USD>), add it to llm_gateway.fallback_rates, or let the worker fetch it from llm_gateway.exchange_rate_url.', upper(u)));
    END IF;
    RETURN u;
END
$$;

-- Fractions of the budget used at which alerts fire: [0.8, 0.9] or
-- {"remaining": [0.2, 0.1, 0.05, 0.01]}.  1.0 (exceeded) is always one.
CREATE FUNCTION llm_gateway.budget_thresholds(v jsonb, OUT thresholds numeric[], OUT style text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    list jsonb := v;
    msg text := '"thresholds" must be an array of up to 8 fractions of the budget used (0 < t <= 10), '
                'or {"remaining": [...]} with fractions left (0 <= r < 1)';
BEGIN
    style := 'used';
    IF jsonb_typeof(v) = 'object' THEN
        IF (SELECT array_agg(k) FROM jsonb_object_keys(v) k) NOT IN ('{remaining}', '{used}') THEN
            PERFORM llm_gateway.config_error('budget', msg);
        END IF;
        style := CASE WHEN v ? 'remaining' THEN 'remaining' ELSE 'used' END;
        list := v -> style;
    END IF;
    IF jsonb_typeof(list) IS DISTINCT FROM 'array' OR jsonb_array_length(list) > 8
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(list) e
                   WHERE jsonb_typeof(e) <> 'number'
                      OR (style = 'used' AND (e::text::numeric <= 0 OR e::text::numeric > 10))
                      OR (style = 'remaining' AND (e::text::numeric < 0 OR e::text::numeric >= 1))) THEN
        PERFORM llm_gateway.config_error('budget', msg);
    END IF;
    SELECT array_agg(DISTINCT t ORDER BY t) INTO thresholds
      FROM (SELECT trim_scale(round(CASE style WHEN 'remaining' THEN 1 - e::text::numeric
                                               ELSE e::text::numeric END, 4)) AS t
              FROM jsonb_array_elements(list) e
            UNION ALL SELECT 1.0) x;
END
$$;

-- Apply the settings of config to a budget row (thresholds, at_limit,
-- downgrade_model, suspend, webhook, enabled), checking each.
CREATE FUNCTION llm_gateway.budget_apply(b llm_gateway.budgets, c jsonb)
RETURNS llm_gateway.budgets
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    th record;
BEGIN
    IF c ? 'thresholds' THEN
        th := llm_gateway.budget_thresholds(c -> 'thresholds');
        b.thresholds := th.thresholds;
        b.threshold_style := th.style;
    END IF;
    IF c ? 'at_limit' THEN
        b.at_limit := coalesce(llm_gateway.config_text(c, 'at_limit', 'budget', 20), 'block');
        IF b.at_limit NOT IN ('block', 'allow', 'downgrade') THEN
            PERFORM llm_gateway.config_error('budget',
                format('"at_limit" must be "block", "allow" or "downgrade", not "%s"', b.at_limit));
        END IF;
    END IF;
    IF c ? 'downgrade_model' THEN
        b.downgrade_model := llm_gateway.config_model(c, 'downgrade_model', 'budget');
    END IF;
    IF b.at_limit = 'downgrade' AND b.downgrade_model IS NULL THEN
        PERFORM llm_gateway.config_error('budget', '"at_limit": "downgrade" needs a "downgrade_model"');
    END IF;
    IF c ? 'suspend' THEN
        b.suspend := coalesce(llm_gateway.config_text(c, 'suspend', 'budget', 20), 'never');
        IF b.suspend NOT IN ('never', 'period', 'manual') THEN
            PERFORM llm_gateway.config_error('budget',
                format('"suspend" must be "never", "period" or "manual", not "%s"', b.suspend));
        END IF;
        IF b.suspend <> 'never' AND b.agent IS NOT NULL THEN
            PERFORM llm_gateway.config_error('budget', 'an agent''s budget cannot suspend the tenant',
                'Use "at_limit": "block" to stop the agent at its limit.');
        END IF;
    END IF;
    IF c ? 'webhook' THEN
        b.webhook := llm_gateway.config_text(c, 'webhook', 'budget', 2000);
        IF b.webhook IS NOT NULL AND b.webhook !~ '^https?://[^[:space:]/?#@]+(/[^[:space:]]*)?$' THEN
            PERFORM llm_gateway.config_error('budget',
                '"webhook" must be an http:// or https:// URL without credentials');
        END IF;
        PERFORM llm_gateway.url_check(b.webhook, '"webhook"');
    END IF;
    IF c ? 'enabled' THEN
        b.enabled := coalesce(llm_gateway.config_bool(c, 'enabled', 'budget'), true);
    END IF;
    RETURN b;
END
$$;

-- Create or change the budget of (tenant or plan, agent, unit, period).
CREATE FUNCTION llm_gateway.budget_upsert(b_tenant text, b_plan text, b_agent text,
                                          amount numeric, unit text, period text, c jsonb)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b llm_gateway.budgets;
    u text := llm_gateway.budget_unit(unit);
    p text := lower(btrim(coalesce(period, 'monthly')));
BEGIN
    IF p NOT IN ('daily', 'weekly', 'monthly') THEN
        PERFORM llm_gateway.config_error('budget', format('unknown period "%s"', left(period, 64)),
            'Periods are daily, weekly and monthly, in the tenant''s time zone.');
    END IF;
    IF amount IS NULL OR amount <= 0
       OR (u IN ('tokens', 'requests') AND (amount <> trunc(amount) OR amount > 1000000000000000))
       OR (u NOT IN ('tokens', 'requests') AND amount > 9000000) THEN
        PERFORM llm_gateway.config_error('budget',
            CASE WHEN u IN ('tokens', 'requests')
                 THEN format('the amount of %s must be a whole number above 0', u)
                 ELSE format('the amount must be above 0 and at most 9000000 %s', upper(u)) END);
    END IF;
    SELECT * INTO b FROM llm_gateway.budgets x
     WHERE x.tenant IS NOT DISTINCT FROM b_tenant AND x.plan IS NOT DISTINCT FROM b_plan
       AND x.agent IS NOT DISTINCT FROM b_agent AND x.unit = u AND x.period = p
       FOR UPDATE;
    IF NOT FOUND THEN
        b.tenant := b_tenant;
        b.plan := b_plan;
        b.agent := b_agent;
        b.unit := u;
        b.period := p;
        b.thresholds := '{0.8,0.9,1.0}';
        b.threshold_style := 'used';
        b.at_limit := 'block';
        b.suspend := 'never';
        b.enabled := true;
    END IF;
    b.amount := amount;
    b := llm_gateway.budget_apply(b, c);
    IF b.id IS NULL THEN
        INSERT INTO llm_gateway.budgets (tenant, plan, agent, amount, unit, period, thresholds,
                                         threshold_style, at_limit, downgrade_model, suspend,
                                         webhook, enabled)
        VALUES (b.tenant, b.plan, b.agent, b.amount, b.unit, b.period, b.thresholds,
                b.threshold_style, b.at_limit, b.downgrade_model, b.suspend, b.webhook, b.enabled)
        RETURNING id INTO b.id;
    ELSE
        UPDATE llm_gateway.budgets x
           SET amount = b.amount, thresholds = b.thresholds, threshold_style = b.threshold_style,
               at_limit = b.at_limit, downgrade_model = b.downgrade_model, suspend = b.suspend,
               webhook = b.webhook, enabled = b.enabled, updated_at = now()
         WHERE x.id = b.id;
    END IF;
    RETURN b.id;
END
$$;

CREATE FUNCTION @extschema@.llm_budget_set(tenant text, amount numeric, unit text DEFAULT 'usd',
                                           period text DEFAULT 'monthly', config jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c jsonb := llm_gateway.config_check(config,
        ARRAY['agent', 'thresholds', 'at_limit', 'downgrade_model', 'suspend', 'webhook',
              'enabled'], 'budget');
    t_id text := llm_budget_set.tenant;
    b_id bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM llm_gateway.tenants t WHERE t.tenant = t_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'LG001',
            MESSAGE = format('tenant "%s" does not exist', left(t_id, 200)),
            HINT = 'Create it first with llm_tenant_set().';
    END IF;
    b_id := llm_gateway.budget_upsert(t_id, NULL, llm_gateway.config_text(c, 'agent', 'budget', 256),
                                      amount, unit, period, c);
    -- a statement of its own: budget_info() must see the row just written
    RETURN llm_gateway.budget_info(b_id);
END
$$;
COMMENT ON FUNCTION @extschema@.llm_budget_set(text, numeric, text, text, jsonb) IS
    'Create or change the budget of a tenant (or of one of its agents) for a unit and period';

CREATE FUNCTION @extschema@.llm_budget_delete(budget_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM llm_gateway.budgets b WHERE b.id = llm_budget_delete.budget_id;
    RETURN FOUND;
END
$$;

---------------------------------------------------------------------------
-- Plans
---------------------------------------------------------------------------

CREATE FUNCTION llm_gateway.plan_info(plan_id text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT to_jsonb(p) - 'created_at' - 'updated_at'
           || jsonb_build_object(
                'budgets', coalesce((SELECT jsonb_agg(llm_gateway.budget_info(b.id) - 'plan'
                                                      ORDER BY b.id)
                                       FROM llm_gateway.budgets b WHERE b.plan = p.plan), '[]'),
                'tenants', (SELECT count(*) FROM llm_gateway.tenants t WHERE t.plan = p.plan))
      FROM llm_gateway.plans p WHERE p.plan = plan_id
$$;

-- The quotas a plan and a tenant share: set from config onto the record.
CREATE FUNCTION llm_gateway.quota_apply(r anyelement, c jsonb, what text)
RETURNS anyelement
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF c ? 'rpm' THEN r.rpm := llm_gateway.config_int(c, 'rpm', what, 1, 100000000); END IF;
    IF c ? 'tpm' THEN r.tpm := llm_gateway.config_int(c, 'tpm', what, 1, 2000000000); END IF;
    IF c ? 'rpd' THEN r.rpd := llm_gateway.config_int(c, 'rpd', what, 1, 2000000000); END IF;
    IF c ? 'tpd' THEN r.tpd := llm_gateway.config_int(c, 'tpd', what, 1, 1000000000000000); END IF;
    IF c ? 'max_concurrency' THEN
        r.max_concurrency := llm_gateway.config_int(c, 'max_concurrency', what, 1, 100000);
    END IF;
    RETURN r;
END
$$;

CREATE FUNCTION @extschema@.llm_plan_set(plan text, config jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    c jsonb := llm_gateway.config_check(config,
        ARRAY['name', 'rpm', 'tpm', 'rpd', 'tpd', 'max_concurrency', 'allowed_models',
              'budgets'], 'plan');
    p_id text := llm_plan_set.plan;
    p llm_gateway.plans;
    e jsonb;
    keep bigint[] := '{}';
BEGIN
    IF p_id IS NULL OR p_id !~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$' THEN
        PERFORM llm_gateway.config_error('plan',
            'the plan id must be 1 to 63 letters, digits, ".", "_", ":" or "-"');
    END IF;
    SELECT * INTO p FROM llm_gateway.plans WHERE plan = p_id FOR UPDATE;
    IF NOT FOUND THEN
        p.plan := p_id;
        p.created_at := now();
    END IF;
    IF c ? 'name' THEN p.name := llm_gateway.config_text(c, 'name', 'plan'); END IF;
    IF c ? 'allowed_models' THEN
        p.allowed_models := llm_gateway.config_text_array(c, 'allowed_models', 'plan');
    END IF;
    p := llm_gateway.quota_apply(p, c, 'plan');
    p.updated_at := now();
    INSERT INTO llm_gateway.plans VALUES (p.*)
    ON CONFLICT (plan) DO UPDATE
       SET name = EXCLUDED.name, rpm = EXCLUDED.rpm, tpm = EXCLUDED.tpm, rpd = EXCLUDED.rpd,
           tpd = EXCLUDED.tpd, max_concurrency = EXCLUDED.max_concurrency,
           allowed_models = EXCLUDED.allowed_models, updated_at = EXCLUDED.updated_at;

    -- "budgets" replaces the plan's budgets: [{"amount": 10, "unit": "usd",
    -- "period": "monthly", ...budget settings}]
    IF c ? 'budgets' THEN
        IF jsonb_typeof(c -> 'budgets') NOT IN ('array', 'null') THEN
            PERFORM llm_gateway.config_error('plan', '"budgets" must be an array of budget objects');
        END IF;
        FOR e IN SELECT * FROM jsonb_array_elements(coalesce(nullif(c -> 'budgets', 'null'), '[]'))
        LOOP
            e := llm_gateway.config_check(e,
                ARRAY['amount', 'unit', 'period', 'thresholds', 'at_limit', 'downgrade_model',
                      'suspend', 'webhook', 'enabled'], 'budget');
            IF jsonb_typeof(e -> 'amount') IS DISTINCT FROM 'number' THEN
                PERFORM llm_gateway.config_error('budget', 'a plan budget needs a numeric "amount"');
            END IF;
            keep := keep || llm_gateway.budget_upsert(NULL, p_id, NULL, (e ->> 'amount')::numeric,
                coalesce(e ->> 'unit', 'usd'), coalesce(e ->> 'period', 'monthly'), e);
        END LOOP;
        DELETE FROM llm_gateway.budgets b WHERE b.plan = p_id AND b.id <> ALL (keep);
    END IF;
    RETURN llm_gateway.plan_info(p_id);
END
$$;
COMMENT ON FUNCTION @extschema@.llm_plan_set(text, jsonb) IS
    'Create or change a plan: default quotas, allowed models and budgets of its tenants';

CREATE FUNCTION @extschema@.llm_plan_delete(plan text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    SELECT count(*) INTO n FROM llm_gateway.tenants t WHERE t.plan = llm_plan_delete.plan;
    IF n > 0 THEN
        PERFORM llm_gateway.config_error('plan',
            format('plan "%s" still has %s tenants', llm_plan_delete.plan, n),
            'Move them to another plan with llm_tenant_set(tenant, ''{"plan": ...}'') first.');
    END IF;
    DELETE FROM llm_gateway.plans p WHERE p.plan = llm_plan_delete.plan;
    RETURN FOUND;
END
$$;

---------------------------------------------------------------------------
-- Agents
---------------------------------------------------------------------------

CREATE FUNCTION llm_gateway.agent_info(a_tenant text, a_agent text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT to_jsonb(a) - 'created_at' - 'updated_at'
           || jsonb_build_object('daily_limit',
                (SELECT b.amount FROM llm_gateway.budgets b
                  WHERE b.tenant = a.tenant AND b.agent = a.agent
                    AND b.unit = 'usd' AND b.period = 'daily'))
      FROM llm_gateway.agents a WHERE a.tenant = a_tenant AND a.agent = a_agent
$$;

CREATE FUNCTION @extschema@.llm_agent_set(tenant text, agent text, config jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    c jsonb := llm_gateway.config_check(config,
        ARRAY['name', 'role', 'preferred_model', 'rpm', 'tpm', 'rpd', 'tpd', 'max_concurrency',
              'daily_limit', 'active', 'metadata'], 'agent');
    t_id text := llm_agent_set.tenant;
    a_id text := llm_agent_set.agent;
    a llm_gateway.agents;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM llm_gateway.tenants WHERE tenant = t_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'LG001',
            MESSAGE = format('tenant "%s" does not exist', left(t_id, 200)),
            HINT = 'Create it first with llm_tenant_set().';
    END IF;
    IF a_id IS NULL OR length(a_id) NOT BETWEEN 1 AND 256 OR a_id ~ '[[:cntrl:]]' THEN
        PERFORM llm_gateway.config_error('agent',
            'the agent id must be 1 to 256 characters without control characters');
    END IF;
    SELECT * INTO a FROM llm_gateway.agents WHERE tenant = t_id AND agent = a_id FOR UPDATE;
    IF NOT FOUND THEN
        a.tenant := t_id;
        a.agent := a_id;
        a.active := true;
        a.metadata := '{}';
        a.created_at := now();
    END IF;
    IF c ? 'name' THEN a.name := llm_gateway.config_text(c, 'name', 'agent'); END IF;
    IF c ? 'role' THEN a.role := llm_gateway.config_text(c, 'role', 'agent'); END IF;
    IF c ? 'preferred_model' THEN
        a.preferred_model := llm_gateway.config_model(c, 'preferred_model', 'agent');
    END IF;
    IF c ? 'active' THEN
        a.active := coalesce(llm_gateway.config_bool(c, 'active', 'agent'), true);
    END IF;
    IF c ? 'metadata' THEN
        IF jsonb_typeof(c -> 'metadata') NOT IN ('object', 'null') THEN
            PERFORM llm_gateway.config_error('agent', '"metadata" must be a JSON object');
        END IF;
        a.metadata := coalesce(nullif(c -> 'metadata', 'null'::jsonb), '{}'::jsonb);
    END IF;
    a := llm_gateway.quota_apply(a, c, 'agent');
    a.updated_at := now();
    INSERT INTO llm_gateway.agents VALUES (a.*)
    ON CONFLICT (tenant, agent) DO UPDATE
       SET name = EXCLUDED.name, role = EXCLUDED.role,
           preferred_model = EXCLUDED.preferred_model, rpm = EXCLUDED.rpm, tpm = EXCLUDED.tpm,
           rpd = EXCLUDED.rpd, tpd = EXCLUDED.tpd, max_concurrency = EXCLUDED.max_concurrency,
           active = EXCLUDED.active, metadata = EXCLUDED.metadata,
           updated_at = EXCLUDED.updated_at;
    -- the agent's own daily limit is a daily USD budget of the agent
    IF c ? 'daily_limit' THEN
        IF jsonb_typeof(c -> 'daily_limit') = 'null' THEN
            DELETE FROM llm_gateway.budgets b
             WHERE b.tenant = t_id AND b.agent = a_id AND b.unit = 'usd' AND b.period = 'daily';
        ELSIF jsonb_typeof(c -> 'daily_limit') <> 'number' THEN
            PERFORM llm_gateway.config_error('agent', '"daily_limit" must be an amount in USD, or null');
        ELSE
            PERFORM llm_gateway.budget_upsert(t_id, NULL, a_id, (c ->> 'daily_limit')::numeric,
                                              'usd', 'daily', '{}');
        END IF;
    END IF;
    RETURN llm_gateway.agent_info(t_id, a_id);
END
$$;
COMMENT ON FUNCTION @extschema@.llm_agent_set(text, text, jsonb) IS
    'Create or change an agent of a tenant: name, role, preferred model, limits, daily USD limit';

CREATE FUNCTION @extschema@.llm_agent_delete(tenant text, agent text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM llm_gateway.budgets b
     WHERE b.tenant = llm_agent_delete.tenant AND b.agent = llm_agent_delete.agent;
    DELETE FROM llm_gateway.agents a
     WHERE a.tenant = llm_agent_delete.tenant AND a.agent = llm_agent_delete.agent;
    RETURN FOUND;
END
$$;

---------------------------------------------------------------------------
-- Exchange rates
---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.llm_exchange_rate_set(currency text, rate numeric)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    cur text := upper(btrim(llm_exchange_rate_set.currency));
    r_rate numeric := llm_exchange_rate_set.rate;
BEGIN
    IF cur IS NULL OR cur !~ '^[A-Z]{3}$' OR cur = 'USD' THEN
        PERFORM llm_gateway.config_error('exchange rate',
            'the currency must be a three-letter code other than USD');
    END IF;
    IF r_rate IS NULL THEN
        DELETE FROM llm_gateway.exchange_rates r WHERE r.currency = cur AND r.source = 'manual';
    ELSIF r_rate <= 0 OR r_rate > 1000000000 THEN
        PERFORM llm_gateway.config_error('exchange rate',
            '"rate" is the number of units of the currency per USD, above 0');
    ELSE
        INSERT INTO llm_gateway.exchange_rates AS r (currency, rate, source)
        VALUES (cur, r_rate, 'manual')
        ON CONFLICT (currency) DO UPDATE
           SET rate = EXCLUDED.rate, source = 'manual', fetched_at = now(),
               checked_at = now(), last_error = NULL;
    END IF;
    RETURN (SELECT to_jsonb(x) FROM llm_gateway.rate_for(cur) x);
END
$$;
COMMENT ON FUNCTION @extschema@.llm_exchange_rate_set(text, numeric) IS
    'Set (or with NULL remove) a manual exchange rate: units of the currency per USD';
