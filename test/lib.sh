# lib.sh — shell helpers shared by run-tests.sh and demo.sh (sourced).
#
# PostgreSQL refuses to run as root, so a root caller runs the server and
# the clients as the postgres user; anyone else runs them as themselves and
# needs sudo (or a writable PostgreSQL tree) only for "make install".

PG_BINDIR=/usr/lib/postgresql/15/bin
PG_CONFIG=${PG_CONFIG:-$PG_BINDIR/pg_config}

lg_setup_users() {
    if [ "$(id -u)" -eq 0 ]; then
        AS_ROOT=()
        RUN_AS=(runuser -u postgres --)
        TEST_USER=postgres
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        AS_ROOT=(sudo)
        RUN_AS=()
        TEST_USER=$(id -un)
    else
        AS_ROOT=()
        RUN_AS=()
        TEST_USER=$(id -un)
    fi
}

# lg_build_install CFLAGS [LDFLAGS]: clean build with the given compiler
# (and linker) flags, install.
lg_build_install() {
    make -s clean PG_CONFIG="$PG_CONFIG" >/dev/null 2>&1
    make -s PG_CONFIG="$PG_CONFIG" PG_CFLAGS="$1" PG_LDFLAGS="${2:-}" || return 1
    "${AS_ROOT[@]}" make -s install PG_CONFIG="$PG_CONFIG" >/dev/null || return 1
}

# lg_scratch_dir: a fresh directory owned by the user the server runs as.
lg_scratch_dir() {
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/llm_gateway-$1.XXXXXX") || return 1
    [ "$(id -u)" -eq 0 ] && chown "$TEST_USER" "$dir"
    echo "$dir"
}

# lg_start_mock DIR: start the mock provider on a free loopback port; sets
# MOCK_PID and MOCK_PORT.
lg_start_mock() {
    local dir=$1
    python3 "$LG_ROOT/test/mock/mock_provider.py" --port 0 \
        --port-file "$dir/mock.port" --log "$dir/mock.log" 2>>"$dir/mock.err" &
    MOCK_PID=$!
    for _ in $(seq 100); do
        [ -s "$dir/mock.port" ] && break
        sleep 0.1
    done
    [ -s "$dir/mock.port" ] || return 1
    MOCK_PORT=$(cat "$dir/mock.port")
}

lg_stop_mock() {
    if [ -n "${MOCK_PID:-}" ]; then
        kill "$MOCK_PID" 2>/dev/null
        wait "$MOCK_PID" 2>/dev/null
        MOCK_PID=
    fi
}

# lg_free_port: a TCP port nobody listens on right now.
lg_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# lg_cluster_start NAME EXTRA_CONF: a throwaway cluster in a scratch
# directory, preloading llm_gateway, on a free port and a private socket.
# Sets WORK, PORT, PGCTL and PSQL (psql as superuser, stops on errors).
lg_cluster_start() {
    WORK=$(lg_scratch_dir "$1") || return 1
    PORT=$(lg_free_port)
    PGCTL=("${RUN_AS[@]}" "$PG_BINDIR/pg_ctl" -D "$WORK/data" -w)
    PSQL=("${RUN_AS[@]}" "$PG_BINDIR/psql" -X -h "$WORK" -p "$PORT" -U postgres -d postgres
          -v ON_ERROR_STOP=1)
    "${RUN_AS[@]}" "$PG_BINDIR/initdb" -D "$WORK/data" -A trust -U postgres --no-sync >/dev/null
    printf '%s\n' "port = $PORT" "listen_addresses = ''" "unix_socket_directories = '$WORK'" \
        "shared_preload_libraries = 'llm_gateway'" "$2" \
        | "${RUN_AS[@]}" tee -a "$WORK/data/postgresql.conf" >/dev/null
    "${PGCTL[@]}" start -l "$WORK/server.log" >/dev/null
}

# lg_cluster_stop: stop the cluster and the mock, remove the scratch directory.
lg_cluster_stop() {
    "${PGCTL[@]}" stop -m fast >/dev/null 2>&1 || true
    lg_stop_mock
    rm -rf "$WORK"
}
