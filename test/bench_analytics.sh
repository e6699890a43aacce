# bench_analytics.sh — the analytics part of make bench (sourced by
# test/bench.sh, which has started the cluster: WORK, PORT, PSQL, RUN_AS,
# PG_BINDIR are set).
#
# One tenant, "target", with 30,000 calls in the last full calendar month
# (America/Sao_Paulo), on ledgers grown to each size of BENCH_LEDGER_ROWS
# (default 100 thousand, 1 million, 10 million rows) by 50 other tenants
# over the last three months.  For each size: the time to roll the new rows
# up, and the time of llm_usage_summary('target', 'custom', <last month>)
# and of llm_usage_summary('target') (this month).  Then a maintenance
# pass's time per 1,000 and per 10,000 new ledger rows.  Everything goes
# through the extension's own code; only the ledger rows are synthetic
# (test/bench_ledger.sql).
#
# bench_analytics OUT: append the results to the Markdown file OUT.

ANALYTICS_ROWS=${BENCH_LEDGER_ROWS:-100000 1000000 10000000}
SUMMARY_MS=()   # the month's summary, per ledger size (for the targets)
SUMMARY_CALLS=${BENCH_SUMMARY_CALLS:-300}

# psql -At on the bench cluster
bq() { "${PSQL[@]}" -qAt -c "$1"; }

# Maintenance passes until nothing is left to roll up; prints the seconds.
bench_rollup_all() {
    bq "DO \$\$
        DECLARE t0 timestamptz := clock_timestamp();
        BEGIN
            LOOP
                EXIT WHEN (llm_maintenance() ->> 'rolled_up')::bigint = 0;
                COMMIT;
            END LOOP;
            RAISE NOTICE 'rollup_seconds=%', round(extract(epoch FROM clock_timestamp() - t0)::numeric, 1);
        END \$\$;" 2>&1 | sed -n 's/.*rollup_seconds=//p'
}

# Background rows up to a ledger of $1 rows, in two parallel sessions, time
# ordered within each; prints the seconds it took.
bench_grow_ledger() {
    local want=$1 have add half start
    have=$(bq "SELECT count(*) FROM llm_gateway.usage")
    add=$((want - have))
    [ "$add" -le 0 ] && { echo 0; return; }
    half=$((add / 2))
    start=$(date +%s.%N)
    bq "SELECT bench_ledger($half, 50, now() - interval '3 months', now() - interval '45 days')" >/dev/null &
    bq "SELECT bench_ledger($((add - half)), 50, now() - interval '45 days', now())" >/dev/null &
    wait
    python3 -c "import time; print(f'{time.time() - $start:.1f}')"
}

# Mean ms of a summary statement over SUMMARY_CALLS calls (pgbench, 1 client).
bench_summary_ms() {
    printf '%s\n' "$1" > "$WORK/summary.sql"
    [ "$(id -u)" -eq 0 ] && chown "$TEST_USER" "$WORK/summary.sql"
    "${RUN_AS[@]}" "$PG_BINDIR/pgbench" -n -h "$WORK" -p "$PORT" -U postgres -c 1 \
        -t "$SUMMARY_CALLS" -f "$WORK/summary.sql" postgres 2>&1 |
        sed -n 's/^latency average = \([0-9.]*\) ms/\1/p'
}

# Median ms of a maintenance pass after $1 new rows, over 9 passes in one
# session (as in the worker: its plans are made once), after a first one.
bench_pass_ms() {
    bq "DO \$\$
        DECLARE t0 timestamptz; ms float8[] := '{}';
        BEGIN
            FOR i IN 0 .. 9 LOOP
                PERFORM bench_ledger($1, 50, now() - interval '10 minutes', now());
                COMMIT;
                t0 := clock_timestamp();
                PERFORM llm_maintenance();
                COMMIT;
                IF i > 0 THEN
                    ms := ms || extract(epoch FROM clock_timestamp() - t0)::float8 * 1000;
                END IF;
            END LOOP;
            RAISE NOTICE 'pass_ms=%', (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x)::numeric, 1)
                                         FROM unnest(ms) x);
        END \$\$;" 2>&1 | sed -n 's/.*pass_ms=//p'
}

bench_analytics() {
    local out=$1 rows grow roll month_ms now_ms size hourly daily last_month
    echo "== analytics: ledgers of $ANALYTICS_ROWS rows"
    # a ledger of its own: the rows of the loads above go first
    bq "SELECT llm_maintenance()" >/dev/null
    bq "TRUNCATE llm_gateway.usage, llm_gateway.usage_hourly, llm_gateway.usage_daily,
                 llm_gateway.rollup_state, llm_gateway.rollup_holes" >/dev/null
    "${PSQL[@]}" -q -f test/bench_ledger.sql >/dev/null
    bq "SELECT llm_tenant_set('target', '{\"members\": [\"public\"], \"timezone\": \"America/Sao_Paulo\"}')" >/dev/null
    last_month="date_trunc('month', now() AT TIME ZONE 'America/Sao_Paulo') AT TIME ZONE 'America/Sao_Paulo'"
    bq "SELECT bench_ledger(30000, 1, ($last_month) - interval '1 month', $last_month, 'target')" >/dev/null
    bench_rollup_all >/dev/null
    MONTH_SQL="SELECT llm_usage_summary('target', 'custom', ($last_month) - interval '1 month', $last_month);"
    NOW_SQL="SELECT llm_usage_summary('target');"

    cat >> "$out" <<MD

## Analytics

\`llm_usage_summary\` of one tenant ("target": 30,000 calls in the last full
calendar month, America/Sao_Paulo) while 50 other tenants grow the ledger;
mean of $SUMMARY_CALLS calls each (pgbench, 1 client, rollups current).

| ledger rows | ledger size | usage_hourly rows | usage_daily rows | rows added in (s) | rolled up in (s) | summary, last month (ms) | summary, this month (ms) |
|---|---|---|---|---|---|---|---|
MD
    for rows in $ANALYTICS_ROWS; do
        grow=$(bench_grow_ledger "$rows")
        roll=$(bench_rollup_all)
        bq "ANALYZE llm_gateway.usage; ANALYZE llm_gateway.usage_hourly; ANALYZE llm_gateway.usage_daily" >/dev/null
        month_ms=$(bench_summary_ms "$MONTH_SQL")
        now_ms=$(bench_summary_ms "$NOW_SQL")
        size=$(bq "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid)))
                     FROM pg_inherits WHERE inhparent = 'llm_gateway.usage'::regclass")
        hourly=$(bq "SELECT count(*) FROM llm_gateway.usage_hourly")
        daily=$(bq "SELECT count(*) FROM llm_gateway.usage_daily")
        rows=$(bq "SELECT count(*) FROM llm_gateway.usage")
        echo "   $rows rows: summary $month_ms ms (month), $now_ms ms (now)"
        echo "| $rows | $size | $hourly | $daily | $grow | $roll | $month_ms | $now_ms |" >> "$out"
        SUMMARY_MS+=("$month_ms")
    done

    local p1k p10k
    p1k=$(bench_pass_ms 1000)
    p10k=$(bench_pass_ms 10000)
    cat >> "$out" <<MD

A maintenance pass (\`llm_maintenance()\`: rollup, periods, sweep,
partitions, cache expiry…) after new ledger rows from 50 tenants in the
last ten minutes, median of 9 in one session: **$p1k ms per 1,000 rows**,
$p10k ms per 10,000 rows; the worker does this in the background, never
in a call.
MD
}
