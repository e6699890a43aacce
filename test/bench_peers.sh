# bench_peers.sh — make bench-peers: the Portkey open-source gateway
# (@portkey-ai/gateway from npm, into a scratch folder, never committed)
# against the same nginx upstream, measured with wrk like the upstream
# itself.  Sourced by test/bench.sh (WORK, UP_PORT, SECONDS_EACH set).

PORTKEY_VERSION=${BENCH_PORTKEY_VERSION:-1.15.2}

# bench_peers OUT DATA: append the peer's rows to the Markdown file OUT and
# its 16-connection throughput to the chart data DATA.
bench_peers() {
    local out=$1 data=$2 dir=$WORK/portkey port pid r1 r16
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        echo "== peers: npm or node missing, Portkey not measured" >&2
        return 0
    fi
    echo "== peers: Portkey gateway $PORTKEY_VERSION from npm"
    mkdir -p "$dir"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error \
        "@portkey-ai/gateway@$PORTKEY_VERSION" >/dev/null) || {
        echo "== peers: npm install failed, Portkey not measured" >&2
        return 0
    }
    port=$(lg_free_port)
    NODE_ENV=production node "$dir/node_modules/@portkey-ai/gateway/build/start-server.js" \
        --port="$port" --headless >"$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" && break
        sleep 0.1
    done
    set -- "x-portkey-provider: openai" "x-portkey-custom-host: http://127.0.0.1:$UP_PORT/v1"
    r1=$(wrkb 1 "http://127.0.0.1:$port/v1/chat/completions" "$@")
    # the ratio from alternated runs of both, averaged (the machine drifts)
    local p=() m=() i
    for i in $(seq "$ROUNDS"); do
        p+=("$(wrkb 16 "http://127.0.0.1:$port/v1/chat/completions" "$@")")
        m+=("$(pgq 16 "$MISS")")
    done
    r16=$(printf '%s\n' "${p[@]}" | awk '{for(i=1;i<=4;i++)s[i]+=$i} END {printf "%.0f %.3f %.3f %.3f\n", s[1]/NR, s[2]/NR, s[3]/NR, s[4]/NR}')
    R[miss16_paired]=$(printf '%s\n' "${m[@]}" | awk '{for(i=1;i<=4;i++)s[i]+=$i} END {printf "%.0f %.3f %.3f %.3f\n", s[1]/NR, s[2]/NR, s[3]/NR, s[4]/NR}')
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
    echo "   portkey1       $r1"
    echo "   portkey16      $r16"
    echo "   miss16_paired  ${R[miss16_paired]}"
    R[portkey1]=$r1
    R[portkey16]=$r16
    echo "\"Portkey\" $(echo "$r16" | awk '{print $1}')" >> "$data"
    cat >> "$out" <<MD

## Peer: the Portkey gateway

@portkey-ai/gateway $PORTKEY_VERSION (Node.js $(node --version)), installed from
npm into a scratch folder by \`make bench-peers\`, proxying to the same nginx
upstream (\`x-portkey-provider: openai\`, \`x-portkey-custom-host\`), measured
with wrk like the upstream:

| measurement | connections | requests/s | p50 (ms) | p99 (ms) | mean (ms) |
|---|---|---|---|---|---|
| Portkey gateway | 1 | $(echo "$r1" | awk '{print $1" | "$2" | "$3" | "$4}') |
| Portkey gateway | 16 | $(echo "$r16" | awk '{print $1" | "$2" | "$3" | "$4}') |

- llm_gateway cache miss vs Portkey at 16 clients, alternated $ROUNDS times
  and averaged: $(f "${R[miss16_paired]}" 1) vs $(f "$r16" 1) calls/s,
  **$(ratio "$(f "${R[miss16_paired]}" 1)" "$(f "$r16" 1)")×** the throughput.
- p50 added over a direct upstream request at 1 client: llm_gateway
  $(minus "$(f "${R[miss1]}" 2)" "$(f "${R[up1]}" 2)") ms, Portkey $(minus "$(echo "$r1" | awk '{print $2}')" "$(f "${R[up1]}" 2)") ms.
MD
}
