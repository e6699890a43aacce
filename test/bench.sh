#!/usr/bin/env bash
# make bench: measure llm_gateway against its floors, in one run, on a
# throwaway cluster and the loopback mock upstream.  Writes
# bench/results.md; prints it.  No assertion: the numbers are for reading.
#
# BENCH_SECONDS (default 10) is the length of each measurement;
# BENCH_LEDGER_ROWS (default "100000 1000000 10000000") the ledger sizes of
# the analytics part ("none" skips it; test/bench_analytics.sh).
set -euo pipefail

cd "$(dirname "$0")/.."
LG_ROOT=$PWD
. test/lib.sh
. test/bench_analytics.sh
SECONDS_EACH=${BENCH_SECONDS:-10}

bash test/deps.sh
lg_setup_users
echo "== build and install (optimised, no assertions)"
lg_build_install "-Wall -Wextra -Werror"

MOCK_PID=
trap lg_cluster_stop EXIT
lg_cluster_start bench "llm_gateway.master_key = 'bench-master-key'
max_connections = 50
shared_buffers = 256MB
max_wal_size = 4GB"
lg_start_mock "$WORK"

"${PSQL[@]}" -q <<SQL
CREATE EXTENSION llm_gateway;
SELECT llm_provider_set('openai', 'openai',
         '{"base_url": "http://127.0.0.1:$MOCK_PORT/v1", "api_key": "sk-mock-0123456789abcdef"}');
SELECT llm_tenant_set('bench', '{"members": ["public"]}');
-- the same, accountable: a budget, rate limits and a daily quota, never reached
SELECT llm_tenant_set('metered', '{"members": ["public"], "rpm": 100000000, "tpm": 2000000000,
                                   "tpd": 1000000000000, "max_concurrency": 1000}');
SELECT llm_budget_set('metered', 1000000, 'usd', 'monthly');
CREATE TABLE bench_insert (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), payload text);
SELECT llm_chat('bench', 'openai/gpt-4o-mini', 'the cached prompt');
SELECT llm_chat('metered', 'openai/gpt-4o-mini', 'the cached prompt', '{"max_tokens": 50}');
SQL

# pgbench NAME CLIENTS SCRIPT -> "tps latency_ms"
pgb() {
    local name=$1 clients=$2 script=$3 out
    printf '%s\n' "$script" > "$WORK/$name.sql"
    [ "$(id -u)" -eq 0 ] && chown "$TEST_USER" "$WORK/$name.sql"
    out=$("${RUN_AS[@]}" "$PG_BINDIR/pgbench" -n -h "$WORK" -p "$PORT" -U postgres \
          -c "$clients" -j "$clients" -T "$SECONDS_EACH" -f "$WORK/$name.sql" postgres 2>&1)
    printf '%.0f %s\n' "$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')" \
        "$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')"
}

echo "== measuring (${SECONDS_EACH}s each)"
read -r sel1_tps sel1_lat <<<"$(pgb select1 1 'SELECT 1;')"
read -r sel8_tps sel8_lat <<<"$(pgb select8 8 'SELECT 1;')"
read -r ins8_tps ins8_lat <<<"$(pgb insert8 8 "INSERT INTO bench_insert (payload) VALUES ('x');")"
read -r hit1_tps hit1_lat <<<"$(pgb hit1 1 "SELECT llm_chat('bench', 'openai/gpt-4o-mini', 'the cached prompt');")"
read -r hit8_tps hit8_lat <<<"$(pgb hit8 8 "SELECT llm_chat('bench', 'openai/gpt-4o-mini', 'the cached prompt');")"
MISS='\set r random(1, 1000000000)
SELECT llm_chat('"'"'bench'"'"', '"'"'openai/gpt-4o-mini'"'"', '"'"'miss '"'"' || :r, '"'"'{"cache": "bypass"}'"'"');'
read -r miss1_tps miss1_lat <<<"$(pgb miss1 1 "$MISS")"
read -r mhit8_tps mhit8_lat <<<"$(pgb mhit8 8 "SELECT llm_chat('metered', 'openai/gpt-4o-mini', 'the cached prompt', '{\"max_tokens\": 50}');")"
MMISS='\set r random(1, 1000000000)
SELECT llm_chat('"'"'metered'"'"', '"'"'openai/gpt-4o-mini'"'"', '"'"'miss '"'"' || :r, '"'"'{"cache": "bypass", "max_tokens": 50}'"'"');'
read -r mmiss1_tps mmiss1_lat <<<"$(pgb mmiss1 1 "$MMISS")"
read -r http_rps http_mean http_median <<<"$(python3 test/bench_http.py "http://127.0.0.1:$MOCK_PORT/v1" sk-mock-0123456789abcdef "$SECONDS_EACH")"

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
diff_ms() { python3 -c "print(f'{$1 - $2:.3f}')"; }
cores=$(nproc)
cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
mkdir -p bench
cat > bench/results.md <<MD
# make bench — results

$(date -u '+%Y-%m-%d %H:%M UTC'), $cores cores ($cpu), PostgreSQL $("$PG_BINDIR/postgres" --version | awk '{print $3}'),
llm_gateway $(sed -n "s/^default_version = '\(.*\)'/\1/p" llm_gateway.control), ${SECONDS_EACH} s per measurement,
upstream: the Python mock provider on loopback (test/mock). Reproduce with \`make bench\`.

| measurement | clients | calls/s | mean latency (ms) |
|---|---|---|---|
| \`SELECT 1\` (floor) | 1 | $sel1_tps | $sel1_lat |
| \`SELECT 1\` (floor) | 8 | $sel8_tps | $sel8_lat |
| one logged \`INSERT\` per transaction (floor) | 8 | $ins8_tps | $ins8_lat |
| \`llm_chat\`, cache hit | 1 | $hit1_tps | $hit1_lat |
| \`llm_chat\`, cache hit | 8 | $hit8_tps | $hit8_lat |
| \`llm_chat\`, cache miss (upstream call) | 1 | $miss1_tps | $miss1_lat |
| \`llm_chat\`, cache hit, tenant with a budget and rate limits | 8 | $mhit8_tps | $mhit8_lat |
| \`llm_chat\`, cache miss, tenant with a budget and rate limits | 1 | $mmiss1_tps | $mmiss1_lat |
| direct HTTP to the upstream, kept alive (floor) | 1 | $http_rps | $http_mean (median $http_median) |

Ratios from this run:

- cache hit vs \`SELECT 1\`, 8 clients: $(ratio "$hit8_tps" "$sel8_tps") of the throughput;
  vs one logged INSERT, 8 clients: $(ratio "$hit8_tps" "$ins8_tps").
- cache hit latency at 1 client: $(diff_ms "$hit1_lat" "$sel1_lat") ms over \`SELECT 1\`.
- cache miss at 1 client: $(diff_ms "$miss1_lat" "$http_mean") ms over a direct HTTP request
  to the same upstream ($(ratio "$miss1_lat" "$http_mean")× its latency), which is the
  gateway's overhead per call: SQL, tenant and route lookup, the spend slot, the
  ledger insert and commit, and JSON handling.
- budgets and rate limits (admission, settlement, the budget lookup): cache hit at
  8 clients $(ratio "$mhit8_tps" "$hit8_tps") of the throughput without them; cache miss
  at 1 client $(diff_ms "$mmiss1_lat" "$miss1_lat") ms more per call.
MD
if [ "$ANALYTICS_ROWS" != none ]; then
    # the worker's own passes would share the rollup work being timed
    "${PSQL[@]}" -qc "ALTER SYSTEM SET llm_gateway.worker_interval = '1h'" -c "SELECT pg_reload_conf()" >/dev/null
    bench_analytics bench/results.md
fi
cat bench/results.md
