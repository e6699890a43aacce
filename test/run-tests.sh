#!/usr/bin/env bash
# make test: install what is missing, build with warnings as errors, install,
# then run pg_regress and the TAP suite as an unprivileged user against the
# project's own mock provider, and end with one line "N passed, N failed".
#
# PostgreSQL refuses to run as root, and the checkout may sit where the
# postgres user cannot read (under /root, say), so the tests run in a scratch
# copy owned by the user that runs them.  TEST_KEEP=1 keeps that copy.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PG_BINDIR=/usr/lib/postgresql/15/bin
PG_CONFIG=${PG_CONFIG:-$PG_BINDIR/pg_config}
CFLAGS_STRICT="-Wall -Wextra -Werror"

say() { printf '== %s\n' "$*"; }
die() { printf 'make test: %s\n' "$*" >&2; echo "0 passed, 1 failed"; exit 1; }

bash test/deps.sh || die "could not install the packages the tests need"

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

say "build (PG_CFLAGS=$CFLAGS_STRICT)"
make -s clean PG_CONFIG="$PG_CONFIG" >/dev/null 2>&1
make -s PG_CONFIG="$PG_CONFIG" PG_CFLAGS="$CFLAGS_STRICT" || die "build failed"
say "install"
"${AS_ROOT[@]}" make -s install PG_CONFIG="$PG_CONFIG" >/dev/null || die "install failed"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/llm_gateway-test.XXXXXX")
cp -a Makefile llm_gateway.control sql expected test "$WORK"/
rm -rf "$WORK/test/tmp"
mkdir -p "$WORK/test/tmp"
[ "$(id -u)" -eq 0 ] && chown -R "$TEST_USER" "$WORK"

MOCK_PID=
cleanup() {
    [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null
    if [ "${TEST_KEEP:-0}" = 1 ]; then
        echo "make test: kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

say "mock provider"
python3 "$WORK/test/mock/mock_provider.py" --port 0 \
    --port-file "$WORK/test/tmp/mock.port" --log "$WORK/test/tmp/mock.log" \
    2>>"$WORK/test/tmp/mock.err" &
MOCK_PID=$!
for _ in $(seq 100); do
    [ -s "$WORK/test/tmp/mock.port" ] && break
    sleep 0.1
done
[ -s "$WORK/test/tmp/mock.port" ] || die "the mock provider did not start"
MOCK_PORT=$(cat "$WORK/test/tmp/mock.port")

cat > "$WORK/test/tmp/regress.conf" <<EOF
shared_preload_libraries = 'llm_gateway'
llm_gateway.master_key = 'regress-master-key-0123456789'
mock.url = 'http://127.0.0.1:$MOCK_PORT'
mock.api_key = 'sk-mock-0123456789abcdef'
lc_messages = 'C'
EOF
[ "$(id -u)" -eq 0 ] && chown "$TEST_USER" "$WORK/test/tmp/regress.conf"

say "pg_regress"
"${RUN_AS[@]}" make -C "$WORK" -s regress-installcheck PG_CONFIG="$PG_CONFIG" \
    2>&1 | tee "$WORK/test/tmp/regress.log"
regress_rc=${PIPESTATUS[0]}

say "TAP"
"${RUN_AS[@]}" make -C "$WORK" -s tap-installcheck PG_CONFIG="$PG_CONFIG" \
    PROVE_FLAGS="-I test/t -v" 2>&1 | tee "$WORK/test/tmp/tap.log"
tap_rc=${PIPESTATUS[0]}

kill "$MOCK_PID" 2>/dev/null
wait "$MOCK_PID" 2>/dev/null
MOCK_PID=

passed=0
failed=0
count() { grep -cE "$1" "$2" || true; }
r_ok=$(count '^(test| ) *[^ ]+ +\.\.\. ok' "$WORK/test/tmp/regress.log")
r_bad=$(count '^(test| ) *[^ ]+ +\.\.\. FAILED' "$WORK/test/tmp/regress.log")
[ "$regress_rc" -ne 0 ] && [ "$r_bad" -eq 0 ] && r_bad=1
t_ok=$(count '^ *ok [0-9]+' "$WORK/test/tmp/tap.log")
t_bad=$(count '^ *not ok [0-9]+' "$WORK/test/tmp/tap.log")
# A script that died before reporting its failure still counts as one.
t_dead=$(grep -cE '^t/.*\(Wstat: [1-9][0-9]* Tests: [0-9]+ Failed: 0\)' "$WORK/test/tmp/tap.log" || true)
[ "$tap_rc" -ne 0 ] && [ $((t_bad + t_dead)) -eq 0 ] && t_dead=1
passed=$((r_ok + t_ok))
failed=$((r_bad + t_bad + t_dead))

if [ -s "$WORK/regression.diffs" ]; then
    say "regression.diffs"
    cat "$WORK/regression.diffs"
    mkdir -p "$ROOT/test/tmp" && cp "$WORK/regression.diffs" "$ROOT/test/tmp/" 2>/dev/null
fi
if [ "$failed" -ne 0 ] && [ -d "$WORK/tmp_check/log" ]; then
    mkdir -p "$ROOT/test/tmp/tap-logs" && cp -r "$WORK/tmp_check/log/." "$ROOT/test/tmp/tap-logs/" 2>/dev/null
    say "TAP server logs copied to test/tmp/tap-logs"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
