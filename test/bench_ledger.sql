-- bench_ledger.sql — helpers for the analytics benchmark (test/bench.sh):
-- a year of monthly ledger partitions, and synthetic ledger rows.  Not part
-- of the extension.

-- The monthly partitions of the twelve months before now, as a worker
-- running for a year would have made them.
SELECT llm_gateway.maintain_partitions(now() - make_interval(months => m), 0)
  FROM generate_series(0, 12) m;

-- n ledger rows evenly spread over [since, until), for tenant "tenant" or,
-- when it is NULL, over "tenants" tenants bench_0 .. bench_<tenants - 1>:
-- each with five agents, two channels and three models on two providers
-- (30 combinations), one attempt in fifty failing, one call in ten a cache
-- hit.
CREATE FUNCTION bench_ledger(n bigint, tenants int, since timestamptz, until timestamptz,
                             tenant text DEFAULT NULL)
RETURNS bigint LANGUAGE sql AS $$
    WITH ins AS (
    INSERT INTO llm_gateway.usage
           (created_at, request_id, attempt, tenant, agent, channel, model, provider,
            upstream_model, status, input_tokens, output_tokens, cost_usd, latency_ms,
            cached, saved_tokens, saved_usd, currency, exchange_rate, rate_source,
            cost_local, finish_reason)
    SELECT since + (until - since) * (i::float8 / n), gen_random_uuid(), 1,
           coalesce(tenant, 'bench_' || (i % tenants)), 'agent_' || (i / 7 % 5),
           CASE WHEN i / 11 % 3 = 0 THEN 'web' ELSE 'whatsapp' END,
           (ARRAY['openai/gpt-4o-mini', 'openai/gpt-4o',
                  'anthropic/claude-sonnet-4-20250514'])[1 + i / 13 % 3],
           (ARRAY['openai', 'openai', 'anthropic'])[1 + i / 13 % 3],
           (ARRAY['gpt-4o-mini', 'gpt-4o', 'claude-sonnet-4-20250514'])[1 + i / 13 % 3],
           CASE WHEN i % 50 = 7 THEN 'error' ELSE 'ok' END,
           CASE WHEN i % 10 = 3 THEN 0 ELSE 100 + i % 900 END,
           CASE WHEN i % 10 = 3 OR i % 50 = 7 THEN 0 ELSE 20 + i % 300 END,
           CASE WHEN i % 10 = 3 THEN 0
                ELSE (100 + i % 900) * 0.15e-6 + (20 + i % 300) * 0.6e-6 END,
           CASE WHEN i % 10 = 3 THEN 1.5 ELSE 250 + (i % 1000) * 1.7 END,
           i % 10 = 3, CASE WHEN i % 10 = 3 THEN 500 ELSE 0 END,
           CASE WHEN i % 10 = 3 THEN 0.0002 ELSE 0 END,
           'USD', 1, 'identity',
           CASE WHEN i % 10 = 3 THEN 0
                ELSE (100 + i % 900) * 0.15e-6 + (20 + i % 300) * 0.6e-6 END,
           'stop'
      FROM generate_series(1, n) i
    RETURNING 1)
    SELECT count(*) FROM ins
$$;
