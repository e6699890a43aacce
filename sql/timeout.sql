-- timeout: statement_timeout stops a call in flight, promptly, and the
-- session goes on.  The mock would take 60 s to answer.
SET statement_timeout = '300ms';
SELECT clock_timestamp() AS t0 \gset
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'slow [[mock:slow_ms=60000]]');
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
-- generous bound: "quickly" means not waiting for the provider
SELECT clock_timestamp() - :'t0'::timestamptz < interval '5 seconds' AS interrupted_quickly;

-- Inside a transaction block too; the transaction is then aborted.
BEGIN;
SET LOCAL statement_timeout = '200ms';
SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'slow [[mock:slow_ms=60000]]');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- A subtransaction catches it and carries on.
SET statement_timeout = '300ms';
DO $$
BEGIN
    PERFORM llm_chat('acme', 'openai/gpt-4o-mini', 'slow [[mock:slow_ms=60000]]');
EXCEPTION WHEN query_canceled THEN
    RAISE NOTICE 'caught %', SQLSTATE;
END
$$;
RESET statement_timeout;

SELECT llm_chat('acme', 'openai/gpt-4o-mini', 'after the timeouts');
