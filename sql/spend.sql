-- spend: a call that may have cost money always reaches the ledger, once.
\set m4 'openai/gpt-4o-mini'
SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;

-- The caller's transaction sees its own row at once.
BEGIN;
SELECT llm_complete('acme', :'m4', '[{"role": "user", "content": "seen at once"}]') ->> 'usage_id' AS usage_id \gset
SELECT status, written_by FROM llm_gateway.usage WHERE id = :usage_id;
COMMIT;

-- ROLLBACK after the call: the worker writes the row.
BEGIN;
SELECT llm_complete('acme', :'m4', '[{"role": "user", "content": "rolled back"}]') ->> 'usage_id' AS usage_id \gset
ROLLBACK;
SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;
SELECT status, written_by, output_tokens > 0 AS answered, cost_usd > 0 AS costed
  FROM llm_gateway.usage WHERE id = :usage_id;

-- An error after the provider answered (a later statement fails).
BEGIN;
SELECT llm_complete('acme', :'m4', '[{"role": "user", "content": "then a failure"}]') ->> 'usage_id' AS usage_id \gset
SELECT 1 / 0;
ROLLBACK;
SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;
SELECT status, written_by FROM llm_gateway.usage WHERE id = :usage_id;

-- A savepoint rolled back, the transaction committed: the row of the call
-- made inside the savepoint is still written, the other one exactly once.
BEGIN;
SELECT llm_chat('acme', :'m4', 'x', '{"agent": "before-savepoint"}');
SAVEPOINT s;
SELECT llm_chat('acme', :'m4', 'x', '{"agent": "inside-savepoint"}');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;
SELECT agent, status, written_by, count(*) FROM llm_gateway.usage
 WHERE agent LIKE '%-savepoint' GROUP BY 1, 2, 3 ORDER BY 1;

-- A provider error: the row is written by the worker (the error aborts the
-- caller's statement), with the SQLSTATE the caller saw.
SELECT llm_chat('acme', :'m4', 'x [[mock:status=503]]');
\echo :LAST_ERROR_SQLSTATE
SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;
SELECT status, http_status, error_code, written_by FROM llm_gateway.usage ORDER BY id DESC LIMIT 1;

-- Cancelled in flight (statement_timeout): a "cancelled" row with the
-- estimated prompt cost, because the provider may bill for it.
SET statement_timeout = '300ms';
SELECT llm_chat('acme', :'m4', repeat('a long prompt ', 100) || '[[mock:slow_ms=60000]]');
RESET statement_timeout;
SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;
SELECT status, error, usage_estimated, input_tokens, output_tokens, cost_usd, written_by
  FROM llm_gateway.usage ORDER BY id DESC LIMIT 1;

-- Past llm_gateway.transactional_ledger_rows calls in one transaction, rows
-- are written by the worker alone; each call still gets exactly one row.
SET llm_gateway.transactional_ledger_rows = 2;
BEGIN;
SELECT count(*) FROM (SELECT llm_chat('acme', :'m4', 'batch ' || i, '{"agent": "batch"}')
                        FROM generate_series(1, 5) i) s;
SELECT count(*) AS rows_visible_inside FROM llm_gateway.usage WHERE agent = 'batch' AND written_by = 'caller';
COMMIT;
RESET llm_gateway.transactional_ledger_rows;
SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;
SELECT written_by, count(*) FROM llm_gateway.usage WHERE agent = 'batch' GROUP BY 1 ORDER BY 1;

-- The default (transactional_ledger_rows = 0): the worker writes every row,
-- in batches, a moment after the call; the caller's transaction writes
-- nothing, so a ROLLBACK changes nothing either.
SET llm_gateway.transactional_ledger_rows = 0;
BEGIN;
SELECT llm_complete('acme', :'m4', '[{"role": "user", "content": "by the worker"}]',
                    '{"agent": "default-mode"}') ->> 'usage_id' AS usage_id \gset
SELECT count(*) AS rows_visible_inside FROM llm_gateway.usage WHERE id = :usage_id;
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_xid;
COMMIT;
SELECT count(*) FROM (SELECT llm_chat('acme', :'m4', 'worker ' || i, '{"agent": "default-mode"}')
                        FROM generate_series(1, 4) i) s;
BEGIN;
SELECT llm_chat('acme', :'m4', 'rolled back', '{"agent": "default-mode"}');
ROLLBACK;
RESET llm_gateway.transactional_ledger_rows;
SELECT (llm_maintenance() -> 'spend' ->> 'pending')::int AS pending;
SELECT written_by, status, count(*) FROM llm_gateway.usage WHERE agent = 'default-mode'
 GROUP BY 1, 2 ORDER BY 1;
SELECT count(*) AS usage_id_is_the_row FROM llm_gateway.usage
 WHERE id = :usage_id AND agent = 'default-mode';

-- A row the ledger refuses holds back no other: it stays queued (and is
-- logged), the others are written.
ALTER TABLE llm_gateway.usage ADD CONSTRAINT refuse_agent CHECK (agent <> 'poison') NOT VALID;
SET llm_gateway.transactional_ledger_rows = 0;
SELECT llm_chat('acme', :'m4', 'refused', '{"agent": "poison"}'),
       llm_chat('acme', :'m4', 'written', '{"agent": "antidote"}');
RESET llm_gateway.transactional_ledger_rows;
SELECT llm_maintenance() IS NOT NULL AS pass_done;
SELECT agent, count(*) FROM llm_gateway.usage WHERE agent IN ('poison', 'antidote')
 GROUP BY 1 ORDER BY 1;
ALTER TABLE llm_gateway.usage DROP CONSTRAINT refuse_agent;
SELECT pg_sleep(1.2);   -- its first retry waits a second
SELECT llm_maintenance() IS NOT NULL AS pass_done;
SELECT agent, count(*) FROM llm_gateway.usage WHERE agent IN ('poison', 'antidote')
 GROUP BY 1 ORDER BY 1;

-- No request id appears twice for one attempt, anywhere in the ledger.
SELECT count(*) AS duplicates FROM (
    SELECT request_id, attempt FROM llm_gateway.usage GROUP BY 1, 2 HAVING count(*) > 1) d;

-- llm_maintenance is for administrators.
CREATE ROLE lg_spend_app;
SET ROLE lg_spend_app;
SELECT llm_maintenance();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT jsonb_object_keys(llm_maintenance()) ORDER BY 1;
