#!/usr/bin/env bash
# make bench: llm_gateway beside its floors, in one run, on a throwaway
# cluster and a fast static upstream (nginx on loopback).  Writes
# bench/results.md, bench/results.png and bench/results.dat; prints the
# Markdown.  No assertion: the numbers are for reading.
#
#   BENCH_SECONDS      length of each load (default 10)
#   BENCH_LEDGER_ROWS  ledger sizes of the analytics part (default
#                      "100000 1000000 10000000"; "none" skips it)
#   BENCH_RSS_CALLS    calls of the memory measurement (default 100000)
#   BENCH_ROUNDS       rounds of the loads compared by their ratio (3)
#
# make bench-peers runs this too, then the Portkey gateway against the same
# upstream (test/bench_peers.sh).
set -euo pipefail

cd "$(dirname "$0")/.."
LG_ROOT=$PWD
. test/lib.sh
. test/bench_lib.sh
. test/bench_analytics.sh
SECONDS_EACH=${BENCH_SECONDS:-10}
RSS_CALLS=${BENCH_RSS_CALLS:-100000}
OUT=bench/results.md

bash test/deps.sh
bash test/deps.sh nginx-light wrk gnuplot-nox curl
lg_setup_users
echo "== build and install"
lg_build_install "-Wall -Wextra -Werror"

bench_cleanup() {
    bench_upstream_stop
    lg_cluster_stop
}
trap bench_cleanup EXIT
lg_cluster_start bench "llm_gateway.master_key = 'bench-master-key'
max_connections = 60
shared_buffers = 512MB
max_wal_size = 4GB
llm_gateway.spend_queue_size = 4096"
bench_upstream_start "$WORK" || { echo "make bench: nginx did not start" >&2; exit 1; }
UPSTREAM="http://127.0.0.1:$UP_PORT/v1/chat/completions"

"${PSQL[@]}" -q >/dev/null <<SQL
CREATE EXTENSION llm_gateway;
SELECT llm_provider_set('openai', 'openai',
         '{"base_url": "http://127.0.0.1:$UP_PORT/v1", "api_key": "sk-bench-0123456789"}');
SELECT llm_tenant_set('bench', '{"members": ["public"]}');
-- accountable tenants: a budget, rate limits and a daily quota, never reached
SELECT llm_tenant_set(t, '{"members": ["public"], "rpm": 100000000, "tpm": 2000000000,
                           "tpd": 1000000000000, "max_concurrency": 1000}')
  FROM (SELECT 'metered' UNION ALL SELECT 'metered_' || i FROM generate_series(0, 15) i) t(t);
SELECT llm_budget_set(tenant, 1000000, 'usd', 'monthly')
  FROM llm_gateway.tenants WHERE tenant LIKE 'metered%';
CREATE TABLE bench_insert (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), payload text);
SELECT llm_chat('bench', 'openai/gpt-4o-mini', 'the cached prompt');
SQL

HIT="SELECT llm_chat('bench', 'openai/gpt-4o-mini', 'the cached prompt')"
MISS="SELECT llm_chat('bench', 'openai/gpt-4o-mini', 'miss ' || \$1, '{\"cache\": \"bypass\"}')"
ONE_TENANT="SELECT llm_chat('metered', 'openai/gpt-4o-mini', 'miss ' || \$1, '{\"cache\": \"bypass\", \"max_tokens\": 50}')"
SIXTEEN="SELECT llm_chat('metered_' || (\$2::int % 16), 'openai/gpt-4o-mini', 'miss ' || \$1, '{\"cache\": \"bypass\", \"max_tokens\": 50}')"

declare -A R
measure() { # KEY: the rest is the command; stores "calls/s p50 p99 mean"
    local key=$1
    shift
    R[$key]=$("$@")
    printf '   %-14s %s\n' "$key" "${R[$key]}"
}
# Two loads compared by their ratio, alternated BENCH_ROUNDS times (3) and
# averaged, so that the machine's drift does not decide the ratio.
ROUNDS=${BENCH_ROUNDS:-3}
measure_pair() { # KEY1 SQL1 KEY2 SQL2, 16 clients each
    local a=() b=() i
    for i in $(seq "$ROUNDS"); do
        a+=("$(pgq 16 "$2")")
        b+=("$(pgq 16 "$4")")
    done
    R[$1]=$(printf '%s\n' "${a[@]}" | awk '{for(i=1;i<=4;i++)s[i]+=$i} END {printf "%.0f %.3f %.3f %.3f\n", s[1]/NR, s[2]/NR, s[3]/NR, s[4]/NR}')
    R[$3]=$(printf '%s\n' "${b[@]}" | awk '{for(i=1;i<=4;i++)s[i]+=$i} END {printf "%.0f %.3f %.3f %.3f\n", s[1]/NR, s[2]/NR, s[3]/NR, s[4]/NR}')
    printf '   %-14s %s\n   %-14s %s\n' "$1" "${R[$1]}" "$3" "${R[$3]}"
}
echo "== measuring (${SECONDS_EACH}s each)"
bench_client_build
measure sel1 pgq 1 'SELECT 1'
measure sel16 pgq 16 'SELECT 1'
measure up1 wrkb 1 "$UPSTREAM"
measure up16 wrkb 16 "$UPSTREAM"
measure ins1 pgq 1 "INSERT INTO bench_insert (payload) VALUES ('x')"
measure miss1 pgq 1 "$MISS"
measure miss16 pgq 16 "$MISS"
measure hit1 pgq 1 "$HIT"
measure_pair ins16 "INSERT INTO bench_insert (payload) VALUES ('x')" hit16 "$HIT"
measure_pair one16 "$ONE_TENANT" six16 "$SIXTEEN"

echo "== backend memory over $RSS_CALLS calls in one session"
read -r RSS_BEFORE RSS_AFTER RSS_SECONDS <<<"$(bench_rss "$RSS_CALLS")"
echo "   RssAnon $RSS_BEFORE kB -> $RSS_AFTER kB"

# ---- the report ----
f() { echo "$1" | awk "{print \$$2}"; }            # field N of a result
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
minus() { python3 -c "print(f'{$1 - $2:.3f}')"; }
cores=$(nproc)
cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
row() { # LABEL CLIENTS KEY
    echo "| $1 | $2 | $(f "${R[$3]}" 1) | $(f "${R[$3]}" 2) | $(f "${R[$3]}" 3) | $(f "${R[$3]}" 4) |"
}
added_p50=$(minus "$(f "${R[miss1]}" 2)" "$(python3 -c "print($(f "${R[sel1]}" 2) + $(f "${R[up1]}" 2))")")
floor16=$(python3 -c "print(f'{1 / (1 / $(f "${R[up16]}" 1) + 1 / $(f "${R[ins16]}" 1)):.0f}')")
mkdir -p bench
cat > "$OUT" <<MD
# make bench — results

$(date -u '+%Y-%m-%d %H:%M UTC'), $cores cores ($cpu), PostgreSQL $("$PG_BINDIR/postgres" --version | awk '{print $3}'),
llm_gateway $(sed -n "s/^default_version = '\(.*\)'/\1/p" llm_gateway.control), ${SECONDS_EACH} s per load, loopback only.
Upstream: nginx serving a fixed OpenAI chat completion, kept alive. Loads:
test/bench_client.c (libpq, a thread and a connection per client, prepared
statements, every call timed) and wrk. Reproduce with \`make bench\`.

| measurement | clients | calls/s | p50 (ms) | p99 (ms) | mean (ms) |
|---|---|---|---|---|---|
$(row '`SELECT 1` (floor)' 1 sel1)
$(row '`SELECT 1` (floor)' 16 sel16)
$(row 'upstream directly, wrk (floor)' 1 up1)
$(row 'upstream directly, wrk (floor)' 16 up16)
$(row 'one logged `INSERT` per transaction (floor)' 1 ins1)
$(row 'one logged `INSERT` per transaction (floor)' 16 ins16)
$(row '`llm_chat`, cache miss (upstream call)' 1 miss1)
$(row '`llm_chat`, cache miss (upstream call)' 16 miss16)
$(row '`llm_chat`, cache hit' 1 hit1)
$(row '`llm_chat`, cache hit' 16 hit16)
$(row 'cache miss, one metered tenant (budget, rate limits)' 16 one16)
$(row 'cache miss, sixteen metered tenants' 16 six16)

Backend memory (RssAnon: private, without shared buffers) of one session
over $RSS_CALLS calls (every tenth a cache miss): $RSS_BEFORE kB after the
first 1,000 calls, $RSS_AFTER kB after all of them
($(( RSS_AFTER - RSS_BEFORE )) kB growth, ${RSS_SECONDS} s).

Ratios from this run:

- cache miss, 1 client: p50 added over \`SELECT 1\` + a direct upstream
  request: **$added_p50 ms**.
- cache miss, 16 clients: $(f "${R[miss16]}" 1) calls/s; the floor of one upstream
  request plus one logged INSERT per call (their throughputs combined as
  1 / (1/a + 1/b)) is $floor16/s: $(ratio "$(f "${R[miss16]}" 1)" "$floor16") of it.
- cache hit, 16 clients: $(ratio "$(f "${R[hit16]}" 1)" "$(f "${R[ins16]}" 1)") of the one-logged-INSERT floor.
- one tenant vs sixteen tenants at 16 clients: $(ratio "$(f "${R[one16]}" 1)" "$(f "${R[six16]}" 1)").
MD

# bench_targets OUT: the targets of the performance issue, each with what
# this run measured and whether it holds.
bench_targets() {
    local out=$1 yes="holds" no="**missed**" peer summary rss=$(( RSS_AFTER - RSS_BEFORE ))
    verdict() { python3 -c "print('$yes' if $1 else '$no')"; }
    if [ -n "${R[portkey16]:-}" ]; then
        peer="| cache miss, 16 clients, ≥ 10× the Portkey gateway (alternated runs) | $(ratio "$(f "${R[miss16_paired]}" 1)" "$(f "${R[portkey16]}" 1)")× ($(f "${R[miss16_paired]}" 1) vs $(f "${R[portkey16]}" 1)/s) | $(verdict "$(f "${R[miss16_paired]}" 1) >= 10 * $(f "${R[portkey16]}" 1)") |"
    else
        peer="| cache miss, 16 clients, ≥ 10× the Portkey gateway | $(f "${R[miss16]}" 1)/s; Portkey not measured (\`make bench-peers\`) | — |"
    fi
    if [ ${#SUMMARY_MS[@]} -gt 0 ]; then
        summary="| \`llm_usage_summary\` of a month, flat over the ledger sizes, < 20 ms | $(IFS=/; echo "${SUMMARY_MS[*]}") ms | $(verdict "max([$(IFS=,; echo "${SUMMARY_MS[*]}")]) < 20 and max([$(IFS=,; echo "${SUMMARY_MS[*]}")]) < 1.5 * min([$(IFS=,; echo "${SUMMARY_MS[*]}")])") |"
    else
        summary="| \`llm_usage_summary\` of a month, flat, < 20 ms | not measured (BENCH_LEDGER_ROWS=none) | — |"
    fi
    cat >> "$out" <<MD

## Targets

| target | this run | |
|---|---|---|
$peer
| cache miss, 1 client, p50 added over \`SELECT 1\` + a direct upstream request ≤ 0.25 ms | $added_p50 ms | $(verdict "$added_p50 <= 0.25") |
| cache hit, 16 clients, ≥ 0.75 of one logged INSERT per transaction | $(ratio "$(f "${R[hit16]}" 1)" "$(f "${R[ins16]}" 1)") | $(verdict "$(f "${R[hit16]}" 1) >= 0.75 * $(f "${R[ins16]}" 1)") |
| one tenant ≥ 0.9 × sixteen tenants, 16 clients | $(ratio "$(f "${R[one16]}" 1)" "$(f "${R[six16]}" 1)") | $(verdict "$(f "${R[one16]}" 1) >= 0.9 * $(f "${R[six16]}" 1)") |
| backend RSS growth over $RSS_CALLS calls < 1 MB | $rss kB | $(verdict "$rss < 1024") |
$summary
MD
}

# the chart's data: label and calls/s at 16 clients
{
    echo "\"SELECT 1\" $(f "${R[sel16]}" 1)"
    echo "\"upstream (wrk)\" $(f "${R[up16]}" 1)"
    echo "\"logged INSERT\" $(f "${R[ins16]}" 1)"
    echo "\"cache hit\" $(f "${R[hit16]}" 1)"
    echo "\"cache miss\" $(f "${R[miss16]}" 1)"
    echo "\"1 tenant\" $(f "${R[one16]}" 1)"
    echo "\"16 tenants\" $(f "${R[six16]}" 1)"
} > bench/results.dat

if [ "${BENCH_PEERS:-0}" = 1 ]; then
    . test/bench_peers.sh
    bench_peers "$OUT" bench/results.dat
fi
if [ "$ANALYTICS_ROWS" != none ]; then
    # the worker's own passes would share the rollup work being timed
    "${PSQL[@]}" -qc "ALTER SYSTEM SET llm_gateway.worker_interval = '1h'" -c "SELECT pg_reload_conf()" >/dev/null
    bench_analytics "$OUT"
fi
bench_targets "$OUT"
bench_chart bench/results.dat bench/results.png "$(date -u '+%Y-%m-%d'), $cores cores ($cpu)"
cat >> "$OUT" <<MD

![calls/s at 16 clients](results.png)
MD
cat "$OUT"
