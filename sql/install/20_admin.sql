-- llm_gateway install script, part 20_admin.sql (see 00_schema.sql)

---------------------------------------------------------------------------
-- Administration API (role llm_gateway_admin)
---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.llm_provider_set(name text, kind text, config jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    c jsonb := llm_gateway.config_check(config,
        ARRAY['base_url', 'api_key', 'api_key_env', 'api_key_file', 'api_version', 'priority', 'weight', 'rpm', 'tpm',
              'max_concurrency', 'timeout_ms', 'connect_timeout_ms', 'headers', 'enabled',
              'status', 'breaker_failures', 'breaker_cooldown_ms', 'breaker_successes',
              'breaker_probes'],
        'provider');
    p_name text := llm_provider_set.name;
    p_kind text := llm_provider_set.kind;
    p llm_gateway.providers;
    old_status text;
BEGIN
    IF p_name IS NULL OR p_name !~ '^[a-z0-9][a-z0-9_.-]{0,62}$' THEN
        PERFORM llm_gateway.config_error('provider',
            'the name must be 1 to 63 lower-case letters, digits, "_", "." or "-"');
    END IF;
    IF p_kind IS NOT NULL AND p_kind NOT IN ('openai', 'azure_openai', 'anthropic', 'gemini') THEN
        PERFORM llm_gateway.config_error('provider', format('unknown kind "%s"', left(p_kind, 64)),
            'Kinds are openai (also every OpenAI-compatible endpoint), azure_openai, anthropic and gemini.');
    END IF;

    SELECT * INTO p FROM llm_gateway.providers WHERE name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        IF p_kind IS NULL THEN
            PERFORM llm_gateway.config_error('provider', 'a new provider needs a kind');
        END IF;
        p.name := p_name;
        p.priority := 100;
        p.weight := 1;
        p.headers := '{}';
        p.status := 'active';
        p.breaker_failures := 5;
        p.breaker_cooldown_ms := 60000;
        p.breaker_successes := 3;
        p.breaker_probes := 1;
        p.created_at := now();
    END IF;
    old_status := p.status;
    IF p_kind IS NOT NULL AND p_kind IS DISTINCT FROM p.kind THEN
        p.kind := p_kind;
        IF NOT c ? 'base_url' THEN
            p.base_url := llm_gateway.default_base_url(p_kind);
        END IF;
    END IF;
    IF c ? 'base_url' THEN
        p.base_url := CASE WHEN jsonb_typeof(c -> 'base_url') = 'string'
                           THEN llm_gateway.normalize_base_url(c ->> 'base_url')
                           ELSE llm_gateway.default_base_url(p.kind) END;
    END IF;
    IF p.base_url IS NULL THEN
        PERFORM llm_gateway.config_error('provider',
            format('kind "%s" has no default endpoint: "base_url" is required', p.kind),
            'For Azure OpenAI, base_url is https://<resource>.openai.azure.com.');
    END IF;
    IF (c ? 'api_key')::int + (c ? 'api_key_env')::int + (c ? 'api_key_file')::int > 1 THEN
        PERFORM llm_gateway.config_error('provider',
            'give one of "api_key", "api_key_env" and "api_key_file"');
    END IF;
    IF c ? 'api_key_env' AND jsonb_typeof(c -> 'api_key_env') <> 'null' THEN
        IF jsonb_typeof(c -> 'api_key_env') <> 'string'
           OR (c ->> 'api_key_env') !~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$' THEN
            PERFORM llm_gateway.config_error('provider',
                '"api_key_env" must be the name of an environment variable (letters, digits, "_")');
        END IF;
        p.api_key_enc := NULL;
        p.api_key_file := NULL;
        p.api_key_env := c ->> 'api_key_env';
    ELSIF c ? 'api_key_env' THEN
        p.api_key_env := NULL;
    END IF;
    IF c ? 'api_key_file' AND jsonb_typeof(c -> 'api_key_file') <> 'null' THEN
        IF jsonb_typeof(c -> 'api_key_file') <> 'string'
           OR (c ->> 'api_key_file') !~ '^/[^[:cntrl:]]*$' OR length(c ->> 'api_key_file') > 1024 THEN
            PERFORM llm_gateway.config_error('provider',
                '"api_key_file" must be an absolute path (at most 1024 bytes, no control characters)');
        END IF;
        p.api_key_enc := NULL;
        p.api_key_env := NULL;
        p.api_key_file := c ->> 'api_key_file';
    ELSIF c ? 'api_key_file' THEN
        p.api_key_file := NULL;
    END IF;
    IF (c ? 'api_key_env' AND p.api_key_env IS NOT NULL)
       OR (c ? 'api_key_file' AND p.api_key_file IS NOT NULL) THEN
        -- configured ahead of the server's environment or file: say so, do not refuse
        DECLARE
            problem text := llm_gateway.key_source_problem(p.api_key_env, p.api_key_file);
        BEGIN
            IF problem IS NOT NULL THEN
                RAISE WARNING 'provider "%": its API key cannot be read yet', p_name
                    USING DETAIL = 'The ' || problem || '.',
                          HINT = 'Calls through this provider fail with LG052 until it can.';
            END IF;
        END;
    END IF;
    IF c ? 'api_key' THEN
        IF jsonb_typeof(c -> 'api_key') = 'null' THEN
            p.api_key_enc := NULL;
        ELSIF jsonb_typeof(c -> 'api_key') <> 'string' OR (c ->> 'api_key') = ''
              OR (c ->> 'api_key') ~ '[[:cntrl:][:space:]]' THEN
            PERFORM llm_gateway.config_error('provider',
                '"api_key" must be a non-empty string without spaces or control characters');
        ELSE
            p.api_key_enc := llm_gateway.secret_encrypt(c ->> 'api_key', 'provider:' || p_name);
            p.api_key_env := NULL;
            p.api_key_file := NULL;
        END IF;
    END IF;
    IF c ? 'api_version' THEN
        p.api_version := llm_gateway.config_text(c, 'api_version', 'provider', 40);
    END IF;
    IF c ? 'priority' THEN
        p.priority := coalesce(llm_gateway.config_int(c, 'priority', 'provider', -1000000, 1000000), 100);
    END IF;
    IF c ? 'weight' THEN
        p.weight := coalesce(llm_gateway.config_int(c, 'weight', 'provider', 1, 1000000), 1);
    END IF;
    IF c ? 'rpm' THEN
        p.rpm := llm_gateway.config_int(c, 'rpm', 'provider', 1, 100000000);
    END IF;
    IF c ? 'tpm' THEN
        p.tpm := llm_gateway.config_int(c, 'tpm', 'provider', 1, 2000000000);
    END IF;
    IF c ? 'max_concurrency' THEN
        p.max_concurrency := llm_gateway.config_int(c, 'max_concurrency', 'provider', 1, 100000);
    END IF;
    IF c ? 'timeout_ms' THEN
        p.timeout_ms := llm_gateway.config_int(c, 'timeout_ms', 'provider', 100, 3600000);
    END IF;
    IF c ? 'connect_timeout_ms' THEN
        p.connect_timeout_ms := llm_gateway.config_int(c, 'connect_timeout_ms', 'provider', 100, 600000);
    END IF;
    IF c ? 'headers' THEN
        p.headers := llm_gateway.config_headers(c);
    END IF;
    IF c ? 'enabled' THEN
        p.status := CASE WHEN coalesce(llm_gateway.config_bool(c, 'enabled', 'provider'), true)
                         THEN 'active' ELSE 'disabled' END;
    END IF;
    IF c ? 'status' THEN
        p.status := coalesce(llm_gateway.config_text(c, 'status', 'provider', 20), 'active');
        IF p.status NOT IN ('active', 'maintenance', 'disabled') THEN
            PERFORM llm_gateway.config_error('provider',
                format('"status" must be "active", "maintenance" or "disabled", not "%s"', p.status),
                'The other states (degraded, rate_limited, circuit_open) are set by the gateway itself.');
        END IF;
    END IF;
    IF c ? 'breaker_failures' THEN
        p.breaker_failures := coalesce(llm_gateway.config_int(c, 'breaker_failures', 'provider', 1, 1000), 5);
    END IF;
    IF c ? 'breaker_cooldown_ms' THEN
        p.breaker_cooldown_ms := coalesce(llm_gateway.config_int(c, 'breaker_cooldown_ms', 'provider', 100, 86400000), 60000);
    END IF;
    IF c ? 'breaker_successes' THEN
        p.breaker_successes := coalesce(llm_gateway.config_int(c, 'breaker_successes', 'provider', 1, 1000), 3);
    END IF;
    IF c ? 'breaker_probes' THEN
        p.breaker_probes := coalesce(llm_gateway.config_int(c, 'breaker_probes', 'provider', 1, 100), 1);
    END IF;
    p.updated_at := now();

    INSERT INTO llm_gateway.providers AS t VALUES (p.*)
    ON CONFLICT (name) DO UPDATE
       SET kind = EXCLUDED.kind, base_url = EXCLUDED.base_url,
           api_key_enc = EXCLUDED.api_key_enc, api_key_env = EXCLUDED.api_key_env,
           api_key_file = EXCLUDED.api_key_file, api_version = EXCLUDED.api_version,
           priority = EXCLUDED.priority, weight = EXCLUDED.weight,
           rpm = EXCLUDED.rpm, tpm = EXCLUDED.tpm,
           max_concurrency = EXCLUDED.max_concurrency,
           timeout_ms = EXCLUDED.timeout_ms,
           connect_timeout_ms = EXCLUDED.connect_timeout_ms,
           headers = EXCLUDED.headers, status = EXCLUDED.status,
           breaker_failures = EXCLUDED.breaker_failures,
           breaker_cooldown_ms = EXCLUDED.breaker_cooldown_ms,
           breaker_successes = EXCLUDED.breaker_successes,
           breaker_probes = EXCLUDED.breaker_probes,
           updated_at = EXCLUDED.updated_at;
    IF old_status IS NOT NULL AND old_status <> p.status THEN
        INSERT INTO llm_gateway.provider_events (provider, from_status, to_status, reason)
        VALUES (p_name, old_status, p.status, 'set by ' || session_user);
    END IF;
    RETURN llm_gateway.provider_info(p_name);
END
$$;
COMMENT ON FUNCTION @extschema@.llm_provider_set(text, text, jsonb) IS
    'Create or change a provider endpoint; only the settings given change';

CREATE FUNCTION @extschema@.llm_provider_delete(name text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM llm_gateway.providers p WHERE p.name = llm_provider_delete.name;
    RETURN FOUND;
END
$$;

-- Re-seal every stored provider key under llm_gateway.master_key (those
-- sealed under llm_gateway.previous_master_key); README "Rotating the
-- master key".
CREATE FUNCTION @extschema@.llm_rotate_master_key()
RETURNS jsonb
LANGUAGE C VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'llm_gateway_rotate_master_key';
COMMENT ON FUNCTION @extschema@.llm_rotate_master_key() IS
    'Re-seal every stored provider key under the current master key';

CREATE FUNCTION @extschema@.llm_model_set(model text, provider text, config jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    c jsonb := llm_gateway.config_check(config,
        ARRAY['upstream_model', 'input_usd_per_mtok', 'output_usd_per_mtok',
              'cached_input_usd_per_mtok', 'cache_write_usd_per_mtok', 'context_window',
              'max_output_tokens', 'priority', 'weight', 'enabled'],
        'model');
    m_model text := llm_model_set.model;
    m_provider text := llm_model_set.provider;
    m llm_gateway.models;
BEGIN
    IF m_model IS NULL OR m_model !~ '^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$' THEN
        PERFORM llm_gateway.config_error('model',
            'the model id must be 1 to 200 characters: letters, digits and ._:/@+-',
            'Model ids look like "openai/gpt-4o-mini".');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM llm_gateway.providers WHERE name = m_provider) THEN
        RAISE EXCEPTION USING ERRCODE = 'LG003',
            MESSAGE = format('provider "%s" does not exist', left(m_provider, 64)),
            HINT = 'Create it first with llm_provider_set().';
    END IF;

    -- Start from the row in force for this deployment, else from any
    -- deployment of the same model (its prices), else from nothing.
    SELECT * INTO m FROM llm_gateway.models
     WHERE model = m_model AND provider = m_provider
     ORDER BY builtin LIMIT 1;
    IF NOT FOUND THEN
        SELECT * INTO m FROM llm_gateway.models
         WHERE model = m_model ORDER BY builtin DESC, provider LIMIT 1;
        IF NOT FOUND THEN
            m.model := m_model;
            m.upstream_model := CASE WHEN position('/' IN m_model) > 0
                                     THEN substr(m_model, position('/' IN m_model) + 1)
                                     ELSE m_model END;
            m.priority := 100;
            m.weight := 1;
            m.enabled := true;
        END IF;
        m.created_at := now();
    END IF;
    m.provider := m_provider;
    m.builtin := false;

    IF c ? 'upstream_model' THEN
        m.upstream_model := coalesce(llm_gateway.config_text(c, 'upstream_model', 'model'), m.upstream_model);
    END IF;
    IF c ? 'input_usd_per_mtok' THEN
        m.input_usd_per_mtok := llm_gateway.config_price(c, 'input_usd_per_mtok', 'model');
    END IF;
    IF c ? 'output_usd_per_mtok' THEN
        m.output_usd_per_mtok := llm_gateway.config_price(c, 'output_usd_per_mtok', 'model');
    END IF;
    IF c ? 'cached_input_usd_per_mtok' THEN
        m.cached_input_usd_per_mtok := llm_gateway.config_price(c, 'cached_input_usd_per_mtok', 'model');
    END IF;
    IF c ? 'cache_write_usd_per_mtok' THEN
        m.cache_write_usd_per_mtok := llm_gateway.config_price(c, 'cache_write_usd_per_mtok', 'model');
    END IF;
    IF c ? 'context_window' THEN
        m.context_window := llm_gateway.config_int(c, 'context_window', 'model', 1, 100000000);
    END IF;
    IF c ? 'max_output_tokens' THEN
        m.max_output_tokens := llm_gateway.config_int(c, 'max_output_tokens', 'model', 1, 100000000);
    END IF;
    IF c ? 'priority' THEN
        m.priority := coalesce(llm_gateway.config_int(c, 'priority', 'model', -1000000, 1000000), 100);
    END IF;
    IF c ? 'weight' THEN
        m.weight := coalesce(llm_gateway.config_int(c, 'weight', 'model', 1, 1000000), 1);
    END IF;
    IF c ? 'enabled' THEN
        m.enabled := coalesce(llm_gateway.config_bool(c, 'enabled', 'model'), true);
    END IF;
    IF m.input_usd_per_mtok IS NULL OR m.output_usd_per_mtok IS NULL THEN
        PERFORM llm_gateway.config_error('model',
            format('model "%s" is new: "input_usd_per_mtok" and "output_usd_per_mtok" are required', m_model),
            'Use 0 for a self-hosted model with no per-token price.');
    END IF;
    m.updated_at := now();

    INSERT INTO llm_gateway.models VALUES (m.*)
    ON CONFLICT (model, provider, builtin) DO UPDATE
       SET upstream_model = EXCLUDED.upstream_model,
           input_usd_per_mtok = EXCLUDED.input_usd_per_mtok,
           output_usd_per_mtok = EXCLUDED.output_usd_per_mtok,
           cached_input_usd_per_mtok = EXCLUDED.cached_input_usd_per_mtok,
           cache_write_usd_per_mtok = EXCLUDED.cache_write_usd_per_mtok,
           context_window = EXCLUDED.context_window,
           max_output_tokens = EXCLUDED.max_output_tokens,
           priority = EXCLUDED.priority, weight = EXCLUDED.weight,
           enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at;
    RETURN (SELECT to_jsonb(d) FROM llm_gateway.deployments d
             WHERE d.model = m_model AND d.provider = m_provider);
END
$$;
COMMENT ON FUNCTION @extschema@.llm_model_set(text, text, jsonb) IS
    'Create or change a deployment of a registry model on a provider; only the settings given change';

CREATE FUNCTION @extschema@.llm_model_delete(model text, provider text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM llm_gateway.models m
     WHERE m.model = llm_model_delete.model AND m.provider = llm_model_delete.provider
       AND NOT m.builtin;
    IF NOT FOUND AND EXISTS (SELECT 1 FROM llm_gateway.models m
                              WHERE m.model = llm_model_delete.model
                                AND m.provider = llm_model_delete.provider) THEN
        RAISE EXCEPTION USING ERRCODE = 'LG012',
            MESSAGE = format('deployment "%s" on "%s" is built in and cannot be deleted',
                             llm_model_delete.model, llm_model_delete.provider),
            HINT = 'Disable it with llm_model_set(model, provider, ''{"enabled": false}'').';
    END IF;
    RETURN FOUND;
END
$$;

CREATE FUNCTION llm_gateway.route_info(route_name text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT to_jsonb(r) FROM llm_gateway.routes r WHERE r.name = route_name
$$;
REVOKE ALL ON FUNCTION llm_gateway.route_info(text) FROM PUBLIC;

CREATE FUNCTION @extschema@.llm_route_set(name text, config jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    c jsonb := llm_gateway.config_check(config,
        ARRAY['strategy', 'models', 'fallback', 'retries', 'enabled'], 'route');
    r_name text := llm_route_set.name;
    r llm_gateway.routes;
    unknown text;
BEGIN
    IF r_name IS NULL OR r_name !~ '^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$' THEN
        PERFORM llm_gateway.config_error('route',
            'the name must be 1 to 200 characters: letters, digits and ._:/@+-');
    END IF;
    SELECT * INTO r FROM llm_gateway.routes WHERE name = r_name FOR UPDATE;
    IF NOT FOUND THEN
        r.name := r_name;
        r.strategy := 'priority';
        r.models := '{}';
        r.fallback := '{}';
        r.enabled := true;
        r.created_at := now();
    END IF;
    IF c ? 'strategy' THEN
        r.strategy := coalesce(llm_gateway.config_text(c, 'strategy', 'route', 20), 'priority');
        IF r.strategy NOT IN ('priority', 'weighted', 'least_busy', 'lowest_latency', 'lowest_cost') THEN
            PERFORM llm_gateway.config_error('route', format('unknown strategy "%s"', r.strategy),
                'Strategies are priority, weighted, least_busy, lowest_latency and lowest_cost.');
        END IF;
    END IF;
    IF c ? 'models' THEN
        r.models := coalesce(llm_gateway.config_text_array(c, 'models', 'route'), '{}');
    END IF;
    IF c ? 'fallback' THEN
        r.fallback := coalesce(llm_gateway.config_text_array(c, 'fallback', 'route'), '{}');
    END IF;
    IF c ? 'retries' THEN
        r.retries := llm_gateway.config_int(c, 'retries', 'route', 0, 10);
    END IF;
    IF c ? 'enabled' THEN
        r.enabled := coalesce(llm_gateway.config_bool(c, 'enabled', 'route'), true);
    END IF;
    IF r_name = 'default' AND cardinality(r.models) > 0 THEN
        PERFORM llm_gateway.config_error('route',
            'the "default" route has no models of its own',
            'Its strategy, retries and fallback apply to every model without a route.');
    END IF;
    IF r_name <> 'default' AND cardinality(r.models) = 0
       AND NOT EXISTS (SELECT 1 FROM llm_gateway.models WHERE model = r_name) THEN
        PERFORM llm_gateway.config_error('route',
            format('route "%s" needs "models": its name is not a model id', r_name),
            'Give the models it routes to, such as ["openai/gpt-4o-mini"].');
    END IF;
    SELECT string_agg(format('"%s"', left(m, 64)), ', ') INTO unknown
      FROM unnest(r.models || r.fallback) m
     WHERE NOT EXISTS (SELECT 1 FROM llm_gateway.models WHERE model = m);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LG002',
            MESSAGE = format('route "%s" names unknown models: %s', r_name, unknown),
            HINT = 'Routes name registry model ids; register them with llm_model_set().';
    END IF;
    r.updated_at := now();
    INSERT INTO llm_gateway.routes VALUES (r.*)
    ON CONFLICT (name) DO UPDATE
       SET strategy = EXCLUDED.strategy, models = EXCLUDED.models,
           fallback = EXCLUDED.fallback, retries = EXCLUDED.retries,
           enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at;
    RETURN llm_gateway.route_info(r_name) - 'created_at' - 'updated_at';
END
$$;
COMMENT ON FUNCTION @extschema@.llm_route_set(text, jsonb) IS
    'Create or change a route: an alias or model id, its strategy, models and fallback chain';

CREATE FUNCTION @extschema@.llm_route_delete(name text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM llm_gateway.routes r WHERE r.name = llm_route_delete.name;
    RETURN FOUND;
END
$$;

CREATE FUNCTION @extschema@.llm_cache_purge(tenant text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM llm_gateway.cache c
     WHERE llm_cache_purge.tenant IS NULL OR c.scope = llm_cache_purge.tenant;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.llm_cache_purge(text) IS
    'Drop cached answers: of one tenant scope, or all of them';

CREATE FUNCTION @extschema@.llm_tenant_set(tenant text, config jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    c jsonb := llm_gateway.config_check(config,
        ARRAY['name', 'plan', 'active', 'allowed_models', 'default_model', 'rpm', 'tpm',
              'rpd', 'tpd', 'max_concurrency', 'currency', 'timezone', 'members', 'metadata',
              'cache_scope', 'privacy', 'suspended'],
        'tenant');
    t_id text := llm_tenant_set.tenant;
    t llm_gateway.tenants;
    members text[];
    bad text;
    old_zone text;
BEGIN
    IF t_id IS NULL OR length(t_id) NOT BETWEEN 1 AND 200 OR t_id ~ '[[:cntrl:]]' THEN
        PERFORM llm_gateway.config_error('tenant',
            'the tenant id must be 1 to 200 characters without control characters');
    END IF;
    SELECT * INTO t FROM llm_gateway.tenants WHERE tenant = t_id FOR UPDATE;
    old_zone := t.timezone;
    IF NOT FOUND THEN
        t.tenant := t_id;
        t.active := true;
        t.currency := 'USD';
        t.timezone := 'UTC';
        t.cache_scope := 'tenant';
        t.privacy := 'hash';
        t.metadata := '{}';
        t.created_at := now();
    END IF;

    IF c ? 'name' THEN t.name := llm_gateway.config_text(c, 'name', 'tenant'); END IF;
    IF c ? 'plan' THEN
        t.plan := llm_gateway.config_text(c, 'plan', 'tenant');
        IF t.plan IS NOT NULL AND NOT EXISTS (SELECT 1 FROM llm_gateway.plans p WHERE p.plan = t.plan) THEN
            PERFORM llm_gateway.config_error('tenant', format('plan "%s" does not exist', t.plan),
                'Create it first with llm_plan_set().');
        END IF;
    END IF;
    IF c ? 'active' THEN
        t.active := coalesce(llm_gateway.config_bool(c, 'active', 'tenant'), true);
    END IF;
    IF c ? 'allowed_models' THEN
        t.allowed_models := llm_gateway.config_text_array(c, 'allowed_models', 'tenant');
    END IF;
    IF c ? 'default_model' THEN
        t.default_model := llm_gateway.config_model(c, 'default_model', 'tenant');
    END IF;
    IF c ? 'rpm' THEN t.rpm := llm_gateway.config_int(c, 'rpm', 'tenant', 1, 100000000); END IF;
    IF c ? 'tpm' THEN t.tpm := llm_gateway.config_int(c, 'tpm', 'tenant', 1, 2000000000); END IF;
    IF c ? 'rpd' THEN t.rpd := llm_gateway.config_int(c, 'rpd', 'tenant', 1, 2000000000); END IF;
    IF c ? 'tpd' THEN t.tpd := llm_gateway.config_int(c, 'tpd', 'tenant', 1, 9000000000000000); END IF;
    IF c ? 'max_concurrency' THEN
        t.max_concurrency := llm_gateway.config_int(c, 'max_concurrency', 'tenant', 1, 100000);
    END IF;
    IF c ? 'currency' THEN
        t.currency := coalesce(upper(llm_gateway.config_text(c, 'currency', 'tenant', 3)), 'USD');
        IF t.currency !~ '^[A-Z]{3}$' THEN
            PERFORM llm_gateway.config_error('tenant', '"currency" must be a three-letter code such as BRL');
        END IF;
        IF (llm_gateway.rate_for(t.currency)).rate IS NULL THEN
            PERFORM llm_gateway.config_error('tenant',
                format('there is no exchange rate for %s', t.currency),
                format('Set one with llm_exchange_rate_set(''%s'', <units per USD>) or add it to llm_gateway.fallback_rates.', t.currency));
        END IF;
    END IF;
    IF c ? 'timezone' THEN
        t.timezone := coalesce(llm_gateway.config_text(c, 'timezone', 'tenant', 64), 'UTC');
        IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = t.timezone) THEN
            PERFORM llm_gateway.config_error('tenant',
                format('unknown time zone "%s"', t.timezone),
                'Use a name from pg_timezone_names, such as America/Sao_Paulo.');
        END IF;
        -- usage_daily holds days of the old zone until now (usage_facts)
        IF t.timezone IS DISTINCT FROM old_zone AND old_zone IS NOT NULL THEN
            t.timezone_since := now();
        END IF;
    END IF;
    IF c ? 'cache_scope' THEN
        t.cache_scope := coalesce(llm_gateway.config_text(c, 'cache_scope', 'tenant', 10), 'tenant');
        IF t.cache_scope NOT IN ('tenant', 'shared', 'off') THEN
            PERFORM llm_gateway.config_error('tenant',
                '"cache_scope" must be "tenant", "shared" or "off"',
                '"shared" lets tenants with that scope answer each other''s identical requests from the cache.');
        END IF;
    END IF;
    IF c ? 'privacy' THEN
        t.privacy := coalesce(llm_gateway.config_text(c, 'privacy', 'tenant', 10), 'hash');
        IF t.privacy NOT IN ('text', 'hash', 'none') THEN
            PERFORM llm_gateway.config_error('tenant',
                '"privacy" must be "text", "hash" or "none"',
                'What the ledger keeps of each call: the prompt and answer texts, only their SHA-256, or nothing.');
        END IF;
    END IF;
    IF c ? 'metadata' THEN
        IF jsonb_typeof(c -> 'metadata') NOT IN ('object', 'null') THEN
            PERFORM llm_gateway.config_error('tenant', '"metadata" must be a JSON object');
        END IF;
        t.metadata := coalesce(nullif(c -> 'metadata', 'null'::jsonb), '{}'::jsonb);
    END IF;
    IF c ? 'suspended' THEN
        IF coalesce(llm_gateway.config_bool(c, 'suspended', 'tenant'), false) THEN
            t.suspended_until := 'infinity';
            t.suspended_reason := format('suspended by %s', session_user);
        ELSE
            -- lifting also clears a budget's suspension held in shared memory
            t.suspended_until := NULL;
            t.suspended_reason := NULL;
            t.suspension_lifted_at := clock_timestamp();
        END IF;
    END IF;
    IF c ? 'members' THEN
        members := coalesce(llm_gateway.config_text_array(c, 'members', 'tenant'), '{}');
        SELECT string_agg(format('"%s"', left(m, 64)), ', ') INTO bad
          FROM unnest(members) m
         WHERE m <> 'public'
           AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = m);
        IF bad IS NOT NULL THEN
            PERFORM llm_gateway.config_error('tenant', 'unknown role ' || bad,
                'Members are existing role names, or "public" for every role.');
        END IF;
    END IF;
    t.updated_at := now();

    INSERT INTO llm_gateway.tenants VALUES (t.*)
    ON CONFLICT (tenant) DO UPDATE
       SET name = EXCLUDED.name, plan = EXCLUDED.plan, active = EXCLUDED.active,
           allowed_models = EXCLUDED.allowed_models,
           default_model = EXCLUDED.default_model,
           rpm = EXCLUDED.rpm, tpm = EXCLUDED.tpm, rpd = EXCLUDED.rpd, tpd = EXCLUDED.tpd,
           max_concurrency = EXCLUDED.max_concurrency, currency = EXCLUDED.currency,
           timezone = EXCLUDED.timezone, timezone_since = EXCLUDED.timezone_since,
           cache_scope = EXCLUDED.cache_scope, privacy = EXCLUDED.privacy,
           metadata = EXCLUDED.metadata, suspended_until = EXCLUDED.suspended_until,
           suspended_reason = EXCLUDED.suspended_reason,
           suspension_lifted_at = EXCLUDED.suspension_lifted_at,
           updated_at = EXCLUDED.updated_at;
    IF members IS NOT NULL THEN
        DELETE FROM llm_gateway.tenant_members WHERE tenant = t_id;
        INSERT INTO llm_gateway.tenant_members (tenant, member)
        SELECT DISTINCT t_id, m FROM unnest(members) m;
    END IF;
    RETURN llm_gateway.tenant_info(t_id);
END
$$;
COMMENT ON FUNCTION @extschema@.llm_tenant_set(text, jsonb) IS
    'Create or change a tenant; only the settings given change, "members" replaces the member list';

CREATE FUNCTION @extschema@.llm_tenant_delete(tenant text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM llm_gateway.tenants t WHERE t.tenant = llm_tenant_delete.tenant;
    RETURN FOUND;
END
$$;
