-- llm_gateway install script: sql/install/*.sql, concatenated in order by
-- the Makefile into llm_gateway--<version>.sql.  00 schema and seed data,
-- 10 internal helpers, 20 administration, 30 budgets and alerts,
-- 80 privileges, 90 calls and status functions.
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
    api_key_enc         bytea,              -- AES-256-GCM, see README "Security"
    api_key_env         text                -- or: a server environment variable
                        CHECK (api_key_env ~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$'),
    api_key_file        text                -- or: a file private to the server
                        CHECK (api_key_file ~ '^/[^[:cntrl:]]*$' AND length(api_key_file) <= 1024),
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
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(api_key_enc, api_key_env, api_key_file) <= 1)
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
    timezone_since  timestamptz,        -- when it last changed (NULL: never)
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
-- Partitioned by month: the worker adds the partitions ahead of time and
-- drops those past llm_gateway.ledger_retention_months (maintenance.c);
-- rows outside every partition land in usage_default.
---------------------------------------------------------------------------

CREATE SEQUENCE llm_gateway.usage_id_seq;
CREATE TABLE llm_gateway.usage (
    id                  bigint NOT NULL DEFAULT nextval('llm_gateway.usage_id_seq'),
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
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE llm_gateway.usage_id_seq OWNED BY llm_gateway.usage.id;
COMMENT ON TABLE llm_gateway.usage IS
    'Usage ledger: one row per provider attempt, with raw token components and cost';

-- The indexes are each partition's own, not the parent's: the parent is the
-- extension's and the monthly partitions are not, and pg_dump restores such
-- partitions only if attaching them creates nothing.  id is unique in each
-- (a row's id and created_at never change, so a second write of a row goes
-- to the same partition and is the conflict its ON CONFLICT DO NOTHING
-- ignores).
CREATE FUNCTION llm_gateway.index_partition(part regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('CREATE UNIQUE INDEX ON %s (id)', part);
    EXECUTE format('CREATE INDEX ON %s (tenant, created_at)', part);
    EXECUTE format('CREATE INDEX ON %s (created_at)', part);
    EXECUTE format('CREATE INDEX ON %s (request_id)', part);
END
$$;
CREATE TABLE llm_gateway.usage_default PARTITION OF llm_gateway.usage DEFAULT;
SELECT llm_gateway.index_partition('llm_gateway.usage_default');

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
SELECT pg_catalog.pg_extension_config_dump('llm_gateway.usage_default', '');
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
