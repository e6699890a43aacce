-- privacy: what the ledger keeps of a call's content, per tenant and call:
-- the texts, only their SHA-256 (the default), or nothing.
\set VERBOSITY terse
\set m4 'openai/gpt-4o-mini'
-- the response cache on, and fresh: the first call of each kind is a miss
SET llm_gateway.cache = on;
SELECT llm_cache_purge(NULL) >= 0 AS purged;

-- The default, "hash": digests on every ledger row, no text anywhere.
SELECT llm_tenant_set('pv_hash', '{"members": ["public"]}') ->> 'privacy' AS privacy;
SELECT '[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "pv hash: olá"}]' AS msgs \gset
SELECT llm_complete('pv_hash', :'m4', :'msgs') ->> 'content' AS answer \gset
SELECT prompt_sha256 = sha256(convert_to((:'msgs')::jsonb::text, 'UTF8')) AS prompt_digest_matches,
       response_sha256 = sha256(convert_to(:'answer', 'UTF8')) AS response_digest_matches
  FROM llm_gateway.usage WHERE tenant = 'pv_hash';
SELECT count(*) AS texts FROM llm_gateway.usage_content WHERE tenant = 'pv_hash';
-- a cached answer's row has the same digests
SELECT llm_complete('pv_hash', :'m4', :'msgs') ->> 'cached' AS cached;
SELECT count(DISTINCT prompt_sha256) AS prompts, count(DISTINCT response_sha256) AS answers,
       count(*) FILTER (WHERE cached) AS cached_rows
  FROM llm_gateway.usage WHERE tenant = 'pv_hash';
-- a call asking for more than its tenant allows gets the tenant's setting
SELECT llm_chat('pv_hash', :'m4', 'pv hash asks for text', '{"privacy": "text"}') IS NOT NULL AS answered;
SELECT count(*) AS texts FROM llm_gateway.usage_content WHERE tenant = 'pv_hash';

-- "text": the prompt and answer are kept, by ledger row, with the digests.
SELECT llm_tenant_set('pv_text', '{"privacy": "text", "members": ["public"]}') ->> 'privacy' AS privacy;
SELECT llm_complete('pv_text', :'m4', :'msgs') AS result \gset
SELECT c.prompt = (:'msgs')::jsonb AS prompt_kept,
       c.response = (:'result')::jsonb ->> 'content' AS answer_kept,
       c.created_at = u.created_at AS same_time,
       u.prompt_sha256 = sha256(convert_to(c.prompt::text, 'UTF8')) AS prompt_digest_matches,
       u.response_sha256 = sha256(convert_to(c.response, 'UTF8')) AS response_digest_matches,
       u.status
  FROM llm_gateway.usage_content c JOIN llm_gateway.usage u ON u.id = c.usage_id
 WHERE c.tenant = 'pv_text';
-- llm_chat too; a cache hit is a call, and keeps its texts as well
SELECT llm_chat('pv_text', :'m4', 'pv text chat') IS NOT NULL AS answered;
SELECT llm_chat('pv_text', :'m4', 'pv text chat') IS NOT NULL AS answered;
SELECT u.cached, c.prompt
  FROM llm_gateway.usage_content c JOIN llm_gateway.usage u ON u.id = c.usage_id
 WHERE c.tenant = 'pv_text' AND c.prompt @> '[{"content": "pv text chat"}]'
 ORDER BY u.id;
-- a call may keep less than its tenant: only the digests, or nothing
SELECT llm_chat('pv_text', :'m4', 'pv text lowered to hash', '{"privacy": "hash"}') IS NOT NULL AS answered;
SELECT llm_chat('pv_text', :'m4', 'pv text lowered to none', '{"privacy": "none"}') IS NOT NULL AS answered;
SELECT count(*) AS texts FROM llm_gateway.usage_content WHERE tenant = 'pv_text';
SELECT count(*) FILTER (WHERE prompt_sha256 IS NOT NULL) AS with_digests,
       count(*) FILTER (WHERE prompt_sha256 IS NULL AND response_sha256 IS NULL) AS without
  FROM llm_gateway.usage WHERE tenant = 'pv_text';
-- a failed call: its row keeps the prompt's digest, no answer, and no text
-- (the error rolls back the statement that would have written it)
SELECT llm_chat('pv_text', :'m4', 'pv text fails [[mock:status=400]]');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_maintenance() ->> 'full' AS flushed;   -- the aborted row, by the worker's path
SELECT status, prompt_sha256 IS NOT NULL AS prompt_digest, response_sha256 IS NULL AS no_answer_digest
  FROM llm_gateway.usage WHERE tenant = 'pv_text' AND status <> 'ok';
SELECT count(*) AS texts FROM llm_gateway.usage_content WHERE tenant = 'pv_text';
-- a rolled-back transaction keeps its spend, not its texts
BEGIN;
SELECT llm_chat('pv_text', :'m4', 'pv text rolled back') IS NOT NULL AS answered;
ROLLBACK;
SELECT llm_maintenance() ->> 'full' AS flushed;
SELECT count(*) AS rows_kept FROM llm_gateway.usage
 WHERE tenant = 'pv_text' AND prompt_sha256 = sha256(convert_to(
       '[{"role": "user", "content": "pv text rolled back"}]'::jsonb::text, 'UTF8'));
SELECT count(*) AS texts FROM llm_gateway.usage_content WHERE prompt @> '[{"content": "pv text rolled back"}]';

-- "none": no digest, no text, and the response cache is not used (it would
-- keep the answer's text).
SELECT llm_tenant_set('pv_none', '{"privacy": "none", "members": ["public"]}') ->> 'privacy' AS privacy;
SELECT llm_chat('pv_none', :'m4', 'pv none') IS NOT NULL AS answered;
SELECT llm_complete('pv_none', :'m4', '[{"role": "user", "content": "pv none"}]') ->> 'cached' AS cached;
SELECT count(*) AS rows, count(prompt_sha256) AS prompt_digests, count(response_sha256) AS answer_digests,
       count(*) FILTER (WHERE cached) AS cached_rows
  FROM llm_gateway.usage WHERE tenant = 'pv_none';
SELECT count(*) AS cached_entries FROM llm_gateway.cache WHERE scope = 'pv_none';
SELECT count(*) AS texts FROM llm_gateway.usage_content WHERE tenant = 'pv_none';

-- Bad settings and options.
SELECT llm_tenant_set('pv_none', '{"privacy": "everything"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('pv_text', :'m4', 'x', '{"privacy": "full"}');
\echo :LAST_ERROR_SQLSTATE
SELECT llm_chat('pv_text', :'m4', 'x', '{"privacy": true}');
\echo :LAST_ERROR_SQLSTATE
-- a null setting returns to the default
SELECT llm_tenant_set('pv_none', '{"privacy": null}') ->> 'privacy' AS privacy;
SELECT llm_tenant_set('pv_none', '{"privacy": "none"}') ->> 'privacy' AS privacy;

-- Tenants cannot read each other's texts.
CREATE ROLE lg_pv_member;
CREATE ROLE lg_pv_other;
SELECT llm_tenant_set('pv_text', '{"members": ["lg_pv_member"]}') ->> 'tenant' AS tenant;
SET ROLE lg_pv_member;
SELECT count(*) > 0 AS member_reads_its_texts FROM llm_gateway.usage_content;
SELECT count(*) AS others_texts FROM llm_gateway.usage_content WHERE tenant <> 'pv_text';
SELECT llm_content_erase('pv_text');
\echo :LAST_ERROR_SQLSTATE
SET ROLE lg_pv_other;
SELECT count(*) AS texts_seen FROM llm_gateway.usage_content;
RESET ROLE;

-- Retention: llm_gateway.content_retention_days, at each full pass.
INSERT INTO llm_gateway.usage_content (usage_id, created_at, tenant, prompt, response)
VALUES (-1, now() - interval '40 days', 'pv_text', '[{"role": "user", "content": "old"}]', 'old answer');
SET llm_gateway.content_retention_days = 30;
SELECT llm_maintenance() ->> 'full' AS full_pass;
RESET llm_gateway.content_retention_days;
SELECT count(*) FILTER (WHERE usage_id = -1) AS old_left, count(*) > 0 AS recent_kept
  FROM llm_gateway.usage_content WHERE tenant = 'pv_text';
-- without a retention nothing goes
SELECT llm_gateway.purge_content(now() + interval '10 years', 0, 0) AS purged;

-- The right to erasure: an administrator drops a tenant's texts (all, or
-- before a time); the ledger rows, which hold spend, stay.
SELECT llm_content_erase('pv_text', now() - interval '1 day') AS erased_old;
SELECT llm_content_erase('pv_text') > 0 AS erased;
SELECT count(*) AS texts FROM llm_gateway.usage_content WHERE tenant = 'pv_text';
SELECT count(*) > 0 AS ledger_kept FROM llm_gateway.usage WHERE tenant = 'pv_text';
SELECT llm_content_erase(NULL);
\echo :LAST_ERROR_SQLSTATE

DROP ROLE lg_pv_member;
DROP ROLE lg_pv_other;
