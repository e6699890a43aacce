-- llm_gateway install script (source of llm_gateway--<version>.sql).
--
-- Layout: the data lives in schema llm_gateway, created here and reserved for
-- the extension.  The public API functions (llm_complete, llm_chat and the
-- llm_*_set administration functions) are created in the schema the
-- extension is installed into (@extschema@: public unless CREATE EXTENSION
-- ... SCHEMA says otherwise), so they can be called unqualified.

\echo Use "CREATE EXTENSION llm_gateway" to load this file. \quit

-- The administration role is cluster-wide and outlives the extension.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles
                    WHERE rolname = 'llm_gateway_admin') THEN
        CREATE ROLE llm_gateway_admin NOLOGIN;
    END IF;
END
$$;

CREATE SCHEMA llm_gateway;
COMMENT ON SCHEMA llm_gateway IS 'llm_gateway configuration, ledger and internals';
REVOKE ALL ON SCHEMA llm_gateway FROM PUBLIC;
GRANT USAGE ON SCHEMA llm_gateway TO llm_gateway_admin;

---------------------------------------------------------------------------
-- Configuration
---------------------------------------------------------------------------

CREATE TABLE llm_gateway.providers (
    name                text PRIMARY KEY
                        CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    kind                text NOT NULL
                        CHECK (kind IN ('openai', 'azure_openai', 'anthropic', 'gemini')),
    base_url            text NOT NULL
                        CHECK (base_url ~ '^https?://[^/?#@[:space:]]+(/[^?#[:space:]]*)?$'
                               AND base_url !~ '/$'),
    api_key_enc         bytea,              -- AES-256-GCM, see README "Secrets"
    api_version         text,               -- azure_openai api-version
    priority            integer NOT NULL DEFAULT 100,
    weight              integer NOT NULL DEFAULT 1 CHECK (weight > 0),
    rpm                 integer CHECK (rpm > 0),
    tpm                 integer CHECK (tpm > 0),
    max_concurrency     integer CHECK (max_concurrency > 0),
    timeout_ms          integer CHECK (timeout_ms BETWEEN 100 AND 3600000),
    connect_timeout_ms  integer CHECK (connect_timeout_ms BETWEEN 100 AND 600000),
    headers             jsonb NOT NULL DEFAULT '{}'
                        CHECK (jsonb_typeof(headers) = 'object'),
    -- set by operators; the runtime states (degraded, rate_limited,
    -- circuit_open) live in shared memory, see llm_providers_status()
    status              text NOT NULL DEFAULT 'active'
                        CHECK (status IN ('active', 'maintenance', 'disabled')),
    breaker_failures    integer NOT NULL DEFAULT 5 CHECK (breaker_failures BETWEEN 1 AND 1000),
    breaker_cooldown_ms integer NOT NULL DEFAULT 60000
                        CHECK (breaker_cooldown_ms BETWEEN 100 AND 86400000),
    breaker_successes   integer NOT NULL DEFAULT 3 CHECK (breaker_successes BETWEEN 1 AND 1000),
    breaker_probes      integer NOT NULL DEFAULT 1 CHECK (breaker_probes BETWEEN 1 AND 100),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE llm_gateway.providers IS
    'Provider endpoints and their sealed API keys; change with llm_provider_set()';

-- The model registry and its deployments: one row per (model, provider).
-- Rows the extension ships (builtin) carry public list prices and are never
-- edited in place: llm_model_set() writes a user row that shadows the
-- builtin one, so pg_dump/restore and extension upgrades never collide with
-- an administrator's changes.  llm_gateway.deployments shows the rows in force.
CREATE TABLE llm_gateway.models (
    model                       text NOT NULL
                                CHECK (model ~ '^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$'),
    provider                    text NOT NULL,
    builtin                     boolean NOT NULL DEFAULT false,
    upstream_model              text NOT NULL CHECK (upstream_model <> ''),
    input_usd_per_mtok          numeric NOT NULL CHECK (input_usd_per_mtok >= 0
                                    AND input_usd_per_mtok = round(input_usd_per_mtok, 6)),
    output_usd_per_mtok         numeric NOT NULL CHECK (output_usd_per_mtok >= 0
                                    AND output_usd_per_mtok = round(output_usd_per_mtok, 6)),
    cached_input_usd_per_mtok   numeric CHECK (cached_input_usd_per_mtok >= 0
                                    AND cached_input_usd_per_mtok = round(cached_input_usd_per_mtok, 6)),
    cache_write_usd_per_mtok    numeric CHECK (cache_write_usd_per_mtok >= 0
                                    AND cache_write_usd_per_mtok = round(cache_write_usd_per_mtok, 6)),
    context_window              integer CHECK (context_window > 0),
    max_output_tokens           integer CHECK (max_output_tokens > 0),
    priority                    integer NOT NULL DEFAULT 100,
    weight                      integer NOT NULL DEFAULT 1 CHECK (weight > 0),
    enabled                     boolean NOT NULL DEFAULT true,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, provider, builtin)
);
COMMENT ON TABLE llm_gateway.models IS
    'Model registry and deployments, prices in USD per million tokens; change with llm_model_set()';

CREATE VIEW llm_gateway.deployments AS
SELECT DISTINCT ON (model, provider)
       model, provider, builtin, upstream_model,
       input_usd_per_mtok, output_usd_per_mtok,
       cached_input_usd_per_mtok, cache_write_usd_per_mtok,
       context_window, max_output_tokens, priority, weight, enabled,
       created_at, updated_at
  FROM llm_gateway.models
 ORDER BY model, provider, builtin;      -- a user row (false) wins
COMMENT ON VIEW llm_gateway.deployments IS
    'The deployments in force: user rows of llm_gateway.models shadow builtin ones';

-- Routes: an alias (or a model id) mapped to target models, a strategy to
-- pick among their deployments, and a fallback chain.  The route named
-- "default" applies to every model id that has no route of its own.
CREATE TABLE llm_gateway.routes (
    name        text PRIMARY KEY
                CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$'),
    strategy    text NOT NULL DEFAULT 'priority'
                CHECK (strategy IN ('priority', 'weighted', 'least_busy',
                                    'lowest_latency', 'lowest_cost')),
    models      text[] NOT NULL DEFAULT '{}',   -- empty: the route's own name
    fallback    text[] NOT NULL DEFAULT '{}',   -- tried in order after the models
    retries     integer CHECK (retries BETWEEN 0 AND 10),   -- NULL: llm_gateway.max_retries
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE llm_gateway.routes IS
    'Aliases, routing strategies and fallback chains; change with llm_route_set()';

CREATE TABLE llm_gateway.tenants (
    tenant          text PRIMARY KEY
                    CHECK (length(tenant) BETWEEN 1 AND 200 AND tenant !~ '[[:cntrl:]]'),
    name            text,
    plan            text,
    active          boolean NOT NULL DEFAULT true,
    allowed_models  text[],             -- NULL: every model; 'openai/*' globs
    default_model   text,
    rpm             integer CHECK (rpm > 0),
    tpm             integer CHECK (tpm > 0),
    rpd             integer CHECK (rpd > 0),
    tpd             bigint CHECK (tpd > 0),
    max_concurrency integer CHECK (max_concurrency > 0),
    currency        text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    timezone        text NOT NULL DEFAULT 'UTC',
    cache_scope     text NOT NULL DEFAULT 'tenant'
                    CHECK (cache_scope IN ('tenant', 'shared', 'off')),
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE llm_gateway.tenants IS 'Tenants; change with llm_tenant_set()';

CREATE TABLE llm_gateway.tenant_members (
    tenant  text NOT NULL REFERENCES llm_gateway.tenants ON DELETE CASCADE,
    member  name NOT NULL,              -- a role name, or 'public'
    PRIMARY KEY (tenant, member)
);
COMMENT ON TABLE llm_gateway.tenant_members IS
    'Roles that may act for a tenant (members of these roles may too)';

---------------------------------------------------------------------------
-- The usage ledger: one row per attempt, insert-only.
-- No foreign keys: a ledger row must never lock or depend on a config row.
---------------------------------------------------------------------------

CREATE TABLE llm_gateway.usage (
    id                  bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    created_at          timestamptz NOT NULL DEFAULT now(),
    request_id          uuid NOT NULL,
    attempt             integer NOT NULL DEFAULT 1,
    tenant              text NOT NULL,
    agent               text,
    channel             text,
    session_id          text,
    conversation_id     text,
    model               text NOT NULL,
    provider            text,
    upstream_model      text,
    status              text NOT NULL CHECK (status IN ('ok', 'error', 'timeout', 'cancelled')),
                                        -- cancelled: interrupted in flight (cost estimated)
    http_status         integer,
    error_code          text,               -- SQLSTATE raised to the caller
    error               text,
    input_tokens        bigint NOT NULL DEFAULT 0,  -- every prompt token
    cached_tokens       bigint NOT NULL DEFAULT 0,  -- of which cache reads
    cache_write_tokens  bigint NOT NULL DEFAULT 0,  -- of which cache writes
    reasoning_tokens    bigint NOT NULL DEFAULT 0,  -- part of output_tokens
    output_tokens       bigint NOT NULL DEFAULT 0,
    usage_estimated     boolean NOT NULL DEFAULT false,
    cost_usd            numeric(24, 12) NOT NULL DEFAULT 0,
    latency_ms          numeric(12, 3),
    cached              boolean NOT NULL DEFAULT false,
    was_fallback        boolean NOT NULL DEFAULT false,
    fallback_reason     text,
    finish_reason       text,
    provider_request_id text,
    metadata            jsonb,
    written_by          text NOT NULL DEFAULT 'caller'
                        CHECK (written_by IN ('caller', 'worker')),
    requested_model     text,               -- the model or route alias asked for
    saved_tokens        bigint NOT NULL DEFAULT 0,  -- cache hits: tokens not spent
    saved_usd           numeric(24, 12) NOT NULL DEFAULT 0
);
COMMENT ON TABLE llm_gateway.usage IS
    'Usage ledger: one row per provider attempt, with raw token components and cost';
CREATE INDEX usage_tenant_created_at ON llm_gateway.usage (tenant, created_at);
CREATE INDEX usage_created_at ON llm_gateway.usage (created_at);
CREATE INDEX usage_request_id ON llm_gateway.usage (request_id);

-- Provider status history: every change of a provider's status.
CREATE TABLE llm_gateway.provider_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    provider    text NOT NULL,
    from_status text NOT NULL,
    to_status   text NOT NULL,
    reason      text
);
COMMENT ON TABLE llm_gateway.provider_events IS
    'Every change of a provider''s status: from, to, why, when';
CREATE INDEX provider_events_provider_at ON llm_gateway.provider_events (provider, at);

-- The response cache: answers keyed by a SHA-256 of the canonical request
-- and its scope.  UNLOGGED: a crash empties it, which only costs misses.
CREATE UNLOGGED TABLE llm_gateway.cache (
    key                 bytea PRIMARY KEY,
    scope               text NOT NULL,          -- a tenant, or '*' (shared)
    model               text NOT NULL,
    provider            text NOT NULL,
    upstream_model      text,
    content             text NOT NULL,
    finish_reason       text,
    input_tokens        bigint NOT NULL,
    cached_tokens       bigint NOT NULL,
    cache_write_tokens  bigint NOT NULL,
    reasoning_tokens    bigint NOT NULL,
    output_tokens       bigint NOT NULL,
    cost_usd            numeric(24, 12) NOT NULL,   -- what the call cost: a hit saves it
    latency_ms          numeric(12, 3),
    bytes               integer NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    last_hit_at         timestamptz NOT NULL DEFAULT now(),
    hits                bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE llm_gateway.cache IS
    'Response cache (unlogged); entries expire and the worker evicts the least recently used';
CREATE INDEX cache_expires_at ON llm_gateway.cache (expires_at);
CREATE INDEX cache_last_hit_at ON llm_gateway.cache (last_hit_at);
CREATE INDEX cache_scope ON llm_gateway.cache (scope);

-- pg_dump keeps the configuration and the ledger (builtin registry rows are
-- recreated by CREATE EXTENSION and must not be dumped).
SELECT pg_catalog.pg_extension_config_dump('llm_gateway.providers', '');
SELECT pg_catalog.pg_extension_config_dump('llm_gateway.models', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('llm_gateway.tenants', '');
SELECT pg_catalog.pg_extension_config_dump('llm_gateway.tenant_members', '');
SELECT pg_catalog.pg_extension_config_dump('llm_gateway.usage', '');
SELECT pg_catalog.pg_extension_config_dump('llm_gateway.usage_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('llm_gateway.routes', '');
SELECT pg_catalog.pg_extension_config_dump('llm_gateway.provider_events', '');
SELECT pg_catalog.pg_extension_config_dump('llm_gateway.provider_events_id_seq', '');

---------------------------------------------------------------------------
-- The registry as shipped: public list prices (USD per million tokens).
---------------------------------------------------------------------------

INSERT INTO llm_gateway.models
    (model, provider, builtin, upstream_model, input_usd_per_mtok, output_usd_per_mtok,
     cached_input_usd_per_mtok, cache_write_usd_per_mtok, context_window, max_output_tokens)
VALUES
    ('openai/gpt-4o', 'openai', true, 'gpt-4o', 2.50, 10.00, 1.25, NULL, 128000, 16384),
    ('openai/gpt-4o-mini', 'openai', true, 'gpt-4o-mini', 0.15, 0.60, 0.075, NULL, 128000, 16384),
    ('groq/llama-3.3-70b-versatile', 'groq', true, 'llama-3.3-70b-versatile', 0.59, 0.79, NULL, NULL, 131072, 32768),
    ('anthropic/claude-3-5-sonnet-20241022', 'anthropic', true, 'claude-3-5-sonnet-20241022', 3.00, 15.00, 0.30, 3.75, 200000, 8192),
    ('anthropic/claude-3-opus-20240229', 'anthropic', true, 'claude-3-opus-20240229', 15.00, 75.00, 1.50, 18.75, 200000, 4096),
    ('anthropic/claude-sonnet-4-20250514', 'anthropic', true, 'claude-sonnet-4-20250514', 3.00, 15.00, 0.30, 3.75, 200000, 64000),
    ('google/gemini-2.0-flash', 'google', true, 'gemini-2.0-flash', 0.10, 0.40, 0.025, NULL, 1048576, 8192);

---------------------------------------------------------------------------
-- Internal helpers (schema llm_gateway, not for direct use)
---------------------------------------------------------------------------

CREATE FUNCTION llm_gateway.secret_encrypt(secret text, context text)
RETURNS bytea
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'llm_gateway_secret_encrypt';
REVOKE ALL ON FUNCTION llm_gateway.secret_encrypt(text, text) FROM PUBLIC;

CREATE FUNCTION llm_gateway.config_error(what text, message text, hint text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF hint IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LG012',
            MESSAGE = format('invalid %s configuration: %s', what, message);
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'LG012',
        MESSAGE = format('invalid %s configuration: %s', what, message),
        HINT = hint;
END
$$;

-- Refuse unknown keys, so that a misspelt setting is an error, not a no-op.
CREATE FUNCTION llm_gateway.config_check(config jsonb, allowed text[], what text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    unknown text;
BEGIN
    IF config IS NULL THEN
        RETURN '{}'::jsonb;
    END IF;
    IF jsonb_typeof(config) <> 'object' THEN
        PERFORM llm_gateway.config_error(what, 'config must be a JSON object',
            'Pass settings as ''{"key": value}''.');
    END IF;
    SELECT string_agg(format('"%s"', left(k, 64)), ', ' ORDER BY k) INTO unknown
      FROM jsonb_object_keys(config) AS k
     WHERE k <> ALL (allowed);
    IF unknown IS NOT NULL THEN
        PERFORM llm_gateway.config_error(what, 'unknown setting ' || unknown,
            format('The %s settings are %s.', what, array_to_string(allowed, ', ')));
    END IF;
    RETURN config;
END
$$;

CREATE FUNCTION llm_gateway.config_int(config jsonb, key text, what text,
                                       min_value bigint, max_value bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb := config -> key;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) <> 'number' OR v::text::numeric <> trunc(v::text::numeric)
       OR v::text::numeric NOT BETWEEN min_value AND max_value THEN
        PERFORM llm_gateway.config_error(what,
            format('"%s" must be an integer between %s and %s', key, min_value, max_value));
    END IF;
    RETURN v::text::bigint;
END
$$;

CREATE FUNCTION llm_gateway.config_price(config jsonb, key text, what text)
RETURNS numeric
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb := config -> key;
    n numeric;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) = 'number' THEN
        n := v::text::numeric;
    END IF;
    IF n IS NULL OR n < 0 OR n > 1000000 OR n <> round(n, 6) THEN
        PERFORM llm_gateway.config_error(what,
            format('"%s" must be a price in USD per million tokens between 0 and 1000000 with at most 6 decimals', key));
    END IF;
    RETURN n;
END
$$;

CREATE FUNCTION llm_gateway.config_bool(config jsonb, key text, what text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb := config -> key;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) <> 'boolean' THEN
        PERFORM llm_gateway.config_error(what, format('"%s" must be true or false', key));
    END IF;
    RETURN v::text::boolean;
END
$$;

CREATE FUNCTION llm_gateway.config_text(config jsonb, key text, what text,
                                        max_length integer DEFAULT 200)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb := config -> key;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) <> 'string' OR length(v #>> '{}') NOT BETWEEN 1 AND max_length
       OR (v #>> '{}') ~ '[[:cntrl:]]' THEN
        PERFORM llm_gateway.config_error(what,
            format('"%s" must be a non-empty string of at most %s characters without control characters',
                   key, max_length));
    END IF;
    RETURN v #>> '{}';
END
$$;

CREATE FUNCTION llm_gateway.config_text_array(config jsonb, key text, what text)
RETURNS text[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb := config -> key;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v) <> 'array' OR EXISTS (
           SELECT 1 FROM jsonb_array_elements(v) e
            WHERE jsonb_typeof(e) <> 'string' OR e #>> '{}' = '') THEN
        PERFORM llm_gateway.config_error(what,
            format('"%s" must be an array of non-empty strings', key));
    END IF;
    RETURN ARRAY(SELECT e FROM jsonb_array_elements_text(v) e);
END
$$;

CREATE FUNCTION llm_gateway.default_base_url(kind text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE kind
        WHEN 'openai' THEN 'https://api.openai.com/v1'
        WHEN 'anthropic' THEN 'https://api.anthropic.com'
        WHEN 'gemini' THEN 'https://generativelanguage.googleapis.com'
    END
$$;

CREATE FUNCTION llm_gateway.normalize_base_url(url text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u text := rtrim(url, '/');
BEGIN
    IF u !~ '^https?://' THEN
        PERFORM llm_gateway.config_error('provider', '"base_url" must start with http:// or https://');
    END IF;
    IF u !~ '^https?://[^/?#@[:space:]]+(/[^?#[:space:]]*)?$' THEN
        PERFORM llm_gateway.config_error('provider',
            '"base_url" must be a plain URL without credentials, query or fragment',
            'Put the API key in "api_key", never in the URL.');
    END IF;
    RETURN u;
END
$$;

-- Extra HTTP headers: names are tokens, values single-line, and the
-- credential and framing headers are the gateway's own business.
CREATE FUNCTION llm_gateway.config_headers(config jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb := config -> 'headers';
    h record;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        RETURN '{}'::jsonb;
    END IF;
    IF jsonb_typeof(v) <> 'object' THEN
        PERFORM llm_gateway.config_error('provider', '"headers" must be a JSON object of strings');
    END IF;
    FOR h IN SELECT key, value FROM jsonb_each(v) LOOP
        IF h.key !~ '^[A-Za-z0-9-]{1,64}$' OR jsonb_typeof(h.value) <> 'string'
           OR (h.value #>> '{}') ~ '[\r\n\x01-\x08]' THEN
            PERFORM llm_gateway.config_error('provider',
                format('header "%s" must have a token name and a single-line string value', left(h.key, 64)));
        END IF;
        IF lower(h.key) IN ('authorization', 'api-key', 'x-api-key', 'x-goog-api-key',
                            'content-type', 'content-length', 'host', 'expect',
                            'transfer-encoding', 'connection') THEN
            PERFORM llm_gateway.config_error('provider',
                format('header "%s" is set by the gateway', h.key),
                'Put the API key in "api_key": it is stored encrypted.');
        END IF;
    END LOOP;
    RETURN v;
END
$$;

CREATE FUNCTION llm_gateway.provider_info(provider_name text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (to_jsonb(p) - 'api_key_enc')
           || jsonb_build_object('api_key_set', p.api_key_enc IS NOT NULL,
                                 'enabled', p.status = 'active')
      FROM llm_gateway.providers p
     WHERE p.name = provider_name
$$;

CREATE FUNCTION llm_gateway.tenant_info(tenant_id text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT to_jsonb(t) || jsonb_build_object('members',
               coalesce((SELECT jsonb_agg(m.member ORDER BY m.member)
                           FROM llm_gateway.tenant_members m
                          WHERE m.tenant = t.tenant), '[]'::jsonb))
      FROM llm_gateway.tenants t
     WHERE t.tenant = tenant_id
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA llm_gateway FROM PUBLIC;

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
        ARRAY['base_url', 'api_key', 'api_version', 'priority', 'weight', 'rpm', 'tpm',
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
    IF c ? 'api_key' THEN
        IF jsonb_typeof(c -> 'api_key') = 'null' THEN
            p.api_key_enc := NULL;
        ELSIF jsonb_typeof(c -> 'api_key') <> 'string' OR (c ->> 'api_key') = ''
              OR (c ->> 'api_key') ~ '[[:cntrl:][:space:]]' THEN
            PERFORM llm_gateway.config_error('provider',
                '"api_key" must be a non-empty string without spaces or control characters');
        ELSE
            p.api_key_enc := llm_gateway.secret_encrypt(c ->> 'api_key', 'provider:' || p_name);
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
           api_key_enc = EXCLUDED.api_key_enc, api_version = EXCLUDED.api_version,
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
              'cache_scope'],
        'tenant');
    t_id text := llm_tenant_set.tenant;
    t llm_gateway.tenants;
    members text[];
    bad text;
BEGIN
    IF t_id IS NULL OR length(t_id) NOT BETWEEN 1 AND 200 OR t_id ~ '[[:cntrl:]]' THEN
        PERFORM llm_gateway.config_error('tenant',
            'the tenant id must be 1 to 200 characters without control characters');
    END IF;
    SELECT * INTO t FROM llm_gateway.tenants WHERE tenant = t_id FOR UPDATE;
    IF NOT FOUND THEN
        t.tenant := t_id;
        t.active := true;
        t.currency := 'USD';
        t.timezone := 'UTC';
        t.cache_scope := 'tenant';
        t.metadata := '{}';
        t.created_at := now();
    END IF;

    IF c ? 'name' THEN t.name := llm_gateway.config_text(c, 'name', 'tenant'); END IF;
    IF c ? 'plan' THEN t.plan := llm_gateway.config_text(c, 'plan', 'tenant'); END IF;
    IF c ? 'active' THEN
        t.active := coalesce(llm_gateway.config_bool(c, 'active', 'tenant'), true);
    END IF;
    IF c ? 'allowed_models' THEN
        t.allowed_models := llm_gateway.config_text_array(c, 'allowed_models', 'tenant');
    END IF;
    IF c ? 'default_model' THEN
        t.default_model := llm_gateway.config_text(c, 'default_model', 'tenant');
        IF t.default_model IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM llm_gateway.models WHERE model = t.default_model)
           AND NOT EXISTS (SELECT 1 FROM llm_gateway.routes WHERE name = t.default_model) THEN
            RAISE EXCEPTION USING ERRCODE = 'LG002',
                MESSAGE = format('model "%s" does not exist', t.default_model),
                HINT = 'Register it with llm_model_set() or llm_route_set() first.';
        END IF;
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
        IF t.currency <> 'USD' THEN
            PERFORM llm_gateway.config_error('tenant',
                format('currency "%s" is not supported yet', t.currency),
                'This version bills in USD; exchange rates come with budgets.');
        END IF;
    END IF;
    IF c ? 'timezone' THEN
        t.timezone := coalesce(llm_gateway.config_text(c, 'timezone', 'tenant', 64), 'UTC');
        IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = t.timezone) THEN
            PERFORM llm_gateway.config_error('tenant',
                format('unknown time zone "%s"', t.timezone),
                'Use a name from pg_timezone_names, such as America/Sao_Paulo.');
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
    IF c ? 'metadata' THEN
        IF jsonb_typeof(c -> 'metadata') NOT IN ('object', 'null') THEN
            PERFORM llm_gateway.config_error('tenant', '"metadata" must be a JSON object');
        END IF;
        t.metadata := coalesce(nullif(c -> 'metadata', 'null'::jsonb), '{}'::jsonb);
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
           timezone = EXCLUDED.timezone, cache_scope = EXCLUDED.cache_scope,
           metadata = EXCLUDED.metadata,
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

REVOKE ALL ON FUNCTION @extschema@.llm_provider_set(text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_provider_delete(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_model_set(text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_model_delete(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_tenant_set(text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_tenant_delete(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_route_set(text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_route_delete(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.llm_cache_purge(text) FROM PUBLIC;
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

---------------------------------------------------------------------------
-- Calls
---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.llm_complete(tenant text, model text, messages jsonb,
                                         options jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'llm_complete';
COMMENT ON FUNCTION @extschema@.llm_complete(text, text, jsonb, jsonb) IS
    'Complete a chat for a tenant through its gateway; returns content, usage and cost';

CREATE FUNCTION @extschema@.llm_providers_status()
RETURNS TABLE (provider text, kind text, status text, circuit text, in_flight integer,
               max_concurrency integer, requests_1m integer, errors_1m integer,
               error_rate numeric, avg_latency_ms numeric, rpm integer, tpm integer,
               tokens_1m bigint, consecutive_failures integer, last_error text,
               status_since timestamptz)
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'llm_providers_status';
COMMENT ON FUNCTION @extschema@.llm_providers_status() IS
    'Every provider: effective status, circuit breaker, in-flight calls, last minute''s errors and latency';
REVOKE ALL ON FUNCTION @extschema@.llm_providers_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.llm_providers_status() TO llm_gateway_admin;

CREATE FUNCTION @extschema@.llm_health()
RETURNS jsonb
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'llm_health';
COMMENT ON FUNCTION @extschema@.llm_health() IS
    'healthy / degraded / unhealthy, with provider counts by status, the worker and the spend queue';

CREATE FUNCTION @extschema@.llm_maintenance(at timestamptz DEFAULT now())
RETURNS jsonb
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'llm_maintenance';
COMMENT ON FUNCTION @extschema@.llm_maintenance(timestamptz) IS
    'One pass of the background worker''s periodic work, run now; returns what it did';
REVOKE ALL ON FUNCTION @extschema@.llm_maintenance(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.llm_maintenance(timestamptz) TO llm_gateway_admin;

CREATE FUNCTION @extschema@.llm_chat(tenant text, model text, prompt text,
                                     options jsonb DEFAULT '{}')
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'llm_chat';
COMMENT ON FUNCTION @extschema@.llm_chat(text, text, text, jsonb) IS
    'One user message in, the answer''s text out';
