# bench_lib.sh — load generators for make bench (sourced by test/bench.sh):
# pgbench and wrk runs reduced to "calls/s p50 p99 mean" (ms), and the
# static upstream (nginx) they are measured against.  Every run is bounded
# in time (BENCH_SECONDS) and targets loopback only.

# The one answer the upstream gives: an OpenAI chat completion.
BENCH_ANSWER='{"id":"chatcmpl-bench","object":"chat.completion","created":1767225600,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Our opening hours are 9 to 18, Monday to Friday."},"finish_reason":"stop"}],"usage":{"prompt_tokens":24,"completion_tokens":14,"total_tokens":38}}'

# bench_upstream_start DIR: nginx on a free loopback port answering every
# POST to /v1/chat/completions with BENCH_ANSWER, keeping connections alive;
# sets UP_PORT.  One worker process: the machine's cores are shared with
# the database.
bench_upstream_start() {
    local dir=$1
    UP_PORT=$(lg_free_port)
    UP_DIR=$dir/nginx
    mkdir -p "$UP_DIR"
    cat > "$UP_DIR/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $UP_DIR/nginx.pid;
error_log $UP_DIR/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path $UP_DIR/body;
    server {
        listen 127.0.0.1:$UP_PORT;
        location = /v1/chat/completions {
            client_body_buffer_size 64k;
            default_type application/json;
            return 200 '$BENCH_ANSWER';
        }
        location / { return 404; }
    }
}
CONF
    /usr/sbin/nginx -c "$UP_DIR/nginx.conf" -p "$UP_DIR" 2>>"$UP_DIR/error.log" || return 1
    for _ in $(seq 50); do
        curl -s -o /dev/null -X POST "http://127.0.0.1:$UP_PORT/v1/chat/completions" && return 0
        sleep 0.1
    done
    return 1
}

bench_upstream_stop() {
    [ -n "${UP_DIR:-}" ] && [ -s "$UP_DIR/nginx.pid" ] && kill "$(cat "$UP_DIR/nginx.pid")" 2>/dev/null
    UP_DIR=
}

# bench_client_build: the libpq load generator (test/bench_client.c).
bench_client_build() {
    gcc -O2 -Wall -o "$WORK/bench_client" test/bench_client.c \
        -I"$("$PG_CONFIG" --includedir)" -L"$("$PG_CONFIG" --libdir)" -lpq -lpthread
}

# pgq CLIENTS SQL -> "calls/s p50 p99 mean" (ms): CLIENTS connections
# running SQL as a prepared statement for BENCH_SECONDS ($1: a random
# integer, $2: the client's number).
pgq() {
    "${RUN_AS[@]}" "$WORK/bench_client" "host=$WORK port=$PORT user=postgres dbname=postgres" \
        "$1" "$SECONDS_EACH" "$2"
}

# wrkb CONNECTIONS URL [HEADER...] -> "requests/s p50 p99 mean" (ms): POSTs
# of a small chat request, kept alive.
wrkb() {
    local conns=$1 url=$2 threads out
    shift 2
    threads=$(( conns < 2 ? 1 : 2 ))
    {
        echo 'wrk.method = "POST"'
        echo 'wrk.headers["Content-Type"] = "application/json"'
        echo 'wrk.headers["Authorization"] = "Bearer sk-bench-0123456789"'
        for h in "$@"; do
            echo "wrk.headers[\"${h%%:*}\"] = \"${h#*: }\""
        done
        echo 'wrk.body = [[{"model":"gpt-4o-mini","messages":[{"role":"user","content":"What are your opening hours?"}]}]]'
        echo 'done = function(summary, latency, requests)'
        echo '  io.write(string.format("WRKB %.0f %.3f %.3f %.3f\n", summary.requests / (summary.duration / 1e6),'
        echo '    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000))'
        echo 'end'
    } > "$WORK/wrk.lua"
    out=$(wrk -t"$threads" -c"$conns" -d"${SECONDS_EACH}s" -s "$WORK/wrk.lua" "$url" 2>&1)
    echo "$out" | sed -n 's/^WRKB //p'
}

# RssAnon of a process, in kB: its private memory, without the shared
# buffers it touched.
bench_rss_kb() {
    sed -n 's/^RssAnon:\s*\([0-9]*\) kB/\1/p' "/proc/$1/status"
}

# bench_rss CALLS -> "before_kB after_kB seconds": one psql session making
# CALLS calls (every tenth a cache miss, the others hits), its backend's
# RssAnon (private memory, not the shared buffers it touched) read after
# the first 1,000 (caches and plans warm) and at the end.
bench_rss() {
    local n=$1 sql=$WORK/rss.sql start out
    python3 - "$n" > "$sql" <<'PY'
import sys
n = int(sys.argv[1])
rss = "SELECT substring(pg_read_file('/proc/self/status') from 'RssAnon:\\s*(\\d+)') AS {} \\gset"
print("\\o /dev/null")
for i in range(n):
    if i == 1000:
        print(rss.format("rss_before"))
    if i % 10 == 0:
        print(f"SELECT llm_chat('bench', 'openai/gpt-4o-mini', 'rss miss {i}', '{{\"cache\": \"bypass\"}}');")
    else:
        print("SELECT llm_chat('bench', 'openai/gpt-4o-mini', 'the cached prompt');")
print(rss.format("rss_after"))
print("\\echo RSS :rss_before :rss_after")
PY
    [ "$(id -u)" -eq 0 ] && chown "$TEST_USER" "$sql"
    start=$(date +%s)
    out=$("${PSQL[@]}" -q -f "$sql" | sed -n 's/^RSS //p')
    echo "$out $(( $(date +%s) - start ))"
}

# bench_chart DATA PNG SUBTITLE: bars of calls/s at 16 clients.
bench_chart() {
    gnuplot <<GP
set terminal pngcairo size 1000,560 font "DejaVu Sans,11"
set output "$2"
set title "llm\\\\_gateway: calls/s at 16 clients, beside its floors\\n{/*0.8 $3}"
set style fill solid 0.85 border -1
set boxwidth 0.65
set grid ytics
set ylabel "calls/s"
set yrange [0:*]
set xtics rotate by -30 nomirror
set key off
plot "$1" using 0:2:xtic(1) with boxes lc rgb "#2f6f9f", \
     "" using 0:2:(sprintf("%d", \$2)) with labels offset 0,0.8 font ",9"
GP
}
