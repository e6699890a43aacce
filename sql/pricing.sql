-- pricing: cost arithmetic from the registry, with cached and reasoning
-- tokens, checked against an independent computation in SQL.
\set m4 'openai/gpt-4o-mini'

-- gpt-4o-mini: 0.15 input, 0.60 output, 0.075 cached input (USD per Mtok).
-- 1514 prompt tokens of which 1024 cached, 321 completion tokens:
--   490 × 0.15 + 1024 × 0.075 + 321 × 0.60 = 342.9 USD per Mtok = 0.0003429 USD
SELECT r -> 'usage' AS usage
  FROM llm_complete('acme', :'m4',
        '[{"role": "user", "content": "p [[mock:usage=1514,321]][[mock:cached=1024]]"}]') r;

-- The ledger keeps the raw components, so the cost can be recomputed.
SELECT u.input_tokens, u.cached_tokens, u.output_tokens, u.cost_usd,
       u.cost_usd = ((u.input_tokens - u.cached_tokens - u.cache_write_tokens) * d.input_usd_per_mtok
                     + u.cached_tokens * d.cached_input_usd_per_mtok
                     + u.output_tokens * d.output_usd_per_mtok) / 1000000 AS recomputed
  FROM llm_gateway.usage u
  JOIN llm_gateway.deployments d ON d.model = u.model AND d.provider = u.provider
 ORDER BY u.id DESC LIMIT 1;

-- Reasoning tokens are part of the output and billed as output.
SELECT r -> 'usage' -> 'output_tokens' AS output, r -> 'usage' -> 'reasoning_tokens' AS reasoning,
       r -> 'usage' -> 'cost_usd' AS cost_usd
  FROM llm_complete('acme', :'m4',
        '[{"role": "user", "content": "p [[mock:usage=1000,500]][[mock:reasoning=400]]"}]') r;

-- A model without a cached price bills cached tokens at the input price.
SELECT llm_model_set('test/no-cache-price', 'openai',
         '{"upstream_model": "gpt-4o-mini", "input_usd_per_mtok": 2, "output_usd_per_mtok": 8}') ->> 'model';
SELECT r -> 'usage' -> 'cost_usd' AS cost_usd
  FROM llm_complete('acme', 'test/no-cache-price',
        '[{"role": "user", "content": "p [[mock:usage=1000,100]][[mock:cached=600]]"}]') r;

-- Exact to the pico-dollar: 1 token at 0.000001 USD per Mtok.
SELECT llm_model_set('test/tiny', 'openai',
         '{"upstream_model": "gpt-4o-mini", "input_usd_per_mtok": 0.000001, "output_usd_per_mtok": 0}') ->> 'model';
SELECT llm_complete('acme', 'test/tiny', '[{"role": "user", "content": "p [[mock:usage=1,0]]"}]') AS r \gset
SELECT :'r'::jsonb -> 'usage' -> 'cost_usd' AS cost_usd, u.cost_usd AS ledger
  FROM llm_gateway.usage u WHERE u.id = (:'r'::jsonb ->> 'usage_id')::bigint;

-- A price correction shadows the builtin row and applies to the next call.
SELECT llm_model_set(:'m4', 'openai', '{"input_usd_per_mtok": 0.30}') - 'created_at' - 'updated_at';
SELECT r -> 'usage' -> 'cost_usd' AS cost_usd
  FROM llm_complete('acme', :'m4', '[{"role": "user", "content": "p [[mock:usage=1000000,0]]"}]') r;
SELECT llm_model_delete(:'m4', 'openai');
SELECT input_usd_per_mtok, builtin FROM llm_gateway.deployments WHERE model = :'m4';
