-- llm_gateway install script, part 10_helpers.sql (see 00_schema.sql)

---------------------------------------------------------------------------
-- Internal helpers (schema llm_gateway, not for direct use)
---------------------------------------------------------------------------

CREATE FUNCTION llm_gateway.secret_encrypt(secret text, context text)
RETURNS bytea
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'llm_gateway_secret_encrypt';
REVOKE ALL ON FUNCTION llm_gateway.secret_encrypt(text, text) FROM PUBLIC;

-- Why this server cannot read the key an api_key_env / api_key_file names
-- right now (NULL: it can); never the key itself.
CREATE FUNCTION llm_gateway.key_source_problem(env text, file text)
RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'llm_gateway_key_source_problem';
REVOKE ALL ON FUNCTION llm_gateway.key_source_problem(text, text) FROM PUBLIC;

-- Raises LG053 unless the gateway may send requests to url (only http and
-- https; plain http only to loopback and llm_gateway.allowed_http_hosts).
CREATE FUNCTION llm_gateway.url_check(url text, what text)
RETURNS void
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'llm_gateway_url_check';

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

-- A setting naming a model: a registry model id or a route, or NULL.
CREATE FUNCTION llm_gateway.config_model(config jsonb, key text, what text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m text := llm_gateway.config_text(config, key, what);
BEGIN
    IF m IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM llm_gateway.models WHERE model = m)
       AND NOT EXISTS (SELECT 1 FROM llm_gateway.routes WHERE name = m) THEN
        RAISE EXCEPTION USING ERRCODE = 'LG002',
            MESSAGE = format('model "%s" does not exist', m),
            HINT = format('"%s" names a registry model or a route: register it with llm_model_set() or llm_route_set() first.', key);
    END IF;
    RETURN m;
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
    PERFORM llm_gateway.url_check(u, '"base_url"');
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
           || jsonb_build_object('api_key_set', num_nonnulls(p.api_key_enc, p.api_key_env,
                                                             p.api_key_file) > 0,
                                 'key_source', CASE WHEN p.api_key_enc IS NOT NULL THEN 'sealed'
                                                    WHEN p.api_key_env IS NOT NULL THEN 'env'
                                                    WHEN p.api_key_file IS NOT NULL THEN 'file'
                                               END,
                                 'enabled', p.status = 'active')
      FROM llm_gateway.providers p
     WHERE p.name = provider_name
$$;

CREATE FUNCTION llm_gateway.tenant_info(tenant_id text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT to_jsonb(t) - 'suspension_lifted_at' || jsonb_build_object('members',
               coalesce((SELECT jsonb_agg(m.member ORDER BY m.member)
                           FROM llm_gateway.tenant_members m
                          WHERE m.tenant = t.tenant), '[]'::jsonb))
      FROM llm_gateway.tenants t
     WHERE t.tenant = tenant_id
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA llm_gateway FROM PUBLIC;
