-- llm_gateway install script, part 50_privacy.sql (see 00_schema.sql)

---------------------------------------------------------------------------
-- What the ledger keeps of a call's content, per tenant ("privacy"):
--   text  the prompt and the answer, in usage_content, besides their hashes
--   hash  only SHA-256 digests on the ledger row (the default)
--   none  nothing of the content
-- A call may ask for less with its "privacy" option, never for more.
-- The digests: prompt_sha256 = sha256(convert_to(messages::text, 'UTF8'))
-- of the messages as the call passed them (jsonb's text form), and
-- response_sha256 = sha256(convert_to(answer, 'UTF8')) of the answer text.
---------------------------------------------------------------------------

ALTER TABLE llm_gateway.tenants
    ADD COLUMN privacy text NOT NULL DEFAULT 'hash'
        CHECK (privacy IN ('text', 'hash', 'none'));

ALTER TABLE llm_gateway.usage
    ADD COLUMN prompt_sha256 bytea,         -- NULL under privacy "none"
    ADD COLUMN response_sha256 bytea;       -- NULL without an answer or under "none"

-- The texts of the calls of tenants with privacy "text": one row per answered
-- call, keyed by its ledger row's id (the attempt that answered).  Written in
-- the caller's transaction: a call whose transaction rolls back leaves its
-- ledger row (spend is never lost) but no text.  Removed with the ledger
-- partition that holds its row, after llm_gateway.content_retention_days,
-- or at once with llm_content_erase().
CREATE TABLE llm_gateway.usage_content (
    usage_id    bigint PRIMARY KEY,         -- llm_gateway.usage.id
    created_at  timestamptz NOT NULL,       -- the ledger row's
    tenant      text NOT NULL,
    prompt      jsonb NOT NULL,             -- the messages as passed
    response    text                        -- the answer; NULL if it had no text
);
CREATE INDEX ON llm_gateway.usage_content (tenant, created_at);
CREATE INDEX ON llm_gateway.usage_content (created_at);
COMMENT ON TABLE llm_gateway.usage_content IS
    'Prompts and answers of tenants whose privacy is "text", by ledger row id';
SELECT pg_catalog.pg_extension_config_dump('llm_gateway.usage_content', '');

-- Delete the stored texts older than the retention: keep_days (0: no limit
-- of its own) and the ledger's keep_months (0: keep all).  A batch per call,
-- so a pass never holds many row locks; returns how many went.
CREATE FUNCTION llm_gateway.purge_content(at timestamptz, keep_days integer, keep_months integer)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz := '-infinity';
    n bigint;
BEGIN
    IF keep_days > 0 THEN
        cutoff := at - make_interval(days => keep_days);
    END IF;
    IF keep_months > 0 THEN
        cutoff := greatest(cutoff,
            (date_trunc('month', at AT TIME ZONE 'UTC') - make_interval(months => keep_months)) AT TIME ZONE 'UTC');
    END IF;
    IF cutoff = '-infinity' THEN
        RETURN 0;
    END IF;
    DELETE FROM llm_gateway.usage_content
     WHERE usage_id IN (SELECT usage_id FROM llm_gateway.usage_content
                         WHERE created_at < cutoff LIMIT 10000);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The right to erasure: drop a tenant's stored texts (all of them, or those
-- before a time).  The ledger rows stay: they hold spend, not content.
CREATE FUNCTION @extschema@.llm_content_erase(tenant text, before timestamptz DEFAULT 'infinity')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'tenant must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    DELETE FROM llm_gateway.usage_content c
     WHERE c.tenant = llm_content_erase.tenant AND c.created_at < coalesce(before, 'infinity');
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.llm_content_erase(text, timestamptz) IS
    'Erase the stored prompts and answers of a tenant (before a time); returns how many';
