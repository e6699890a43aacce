#!/usr/bin/env bash
# make fuzz: build the libFuzzer targets (clang, AddressSanitizer + UBSan)
# outside the server and run each for a bounded time.
#
#   test/fuzz/run.sh run      each target FUZZ_SECONDS (default 60) from its
#                             checked-in corpus (test/fuzz/corpus/TARGET);
#                             new inputs go to a scratch directory, a crash
#                             is saved in test/fuzz/crashes/ and fails the run
#   test/fuzz/run.sh replay   every checked-in input once through each
#                             target (make test SANITIZE=1 does this)
#
# Targets: openai_reply, anthropic_reply, gemini_reply (each protocol's
# reply and error parsers), cache_key (the cache key's canonical form is
# injective), all standalone; and validator (the messages/options
# validator, which walks jsonb: a module run inside `postgres --single`,
# see fuzz_validator.c).  An input that once crashed a target is kept in its corpus
# as a regression.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
MODE=${1:-run}
SECONDS_EACH=${FUZZ_SECONDS:-60}
. test/lib.sh
lg_setup_users
bash test/deps.sh clang
OUT=$(mktemp -d "${TMPDIR:-/tmp}/llm_gateway-fuzz.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

SERVER_INC=$("$PG_CONFIG" --includedir-server)
PGLIB=$("$PG_CONFIG" --pkglibdir)
CFLAGS=(-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined
        -fno-sanitize-recover=undefined -I src -I test/fuzz -isystem "$SERVER_INC")
LIBS=(-Wl,--gc-sections "$PGLIB/libpgcommon.a" "$PGLIB/libpgport.a" -lcrypto)

echo "== build"
for f in provider_common provider_openai provider_anthropic provider_gemini json_extract cache_key; do
    clang "${CFLAGS[@]}" -fsanitize=fuzzer-no-link -ffunction-sections -fdata-sections \
        -c -o "$OUT/$f.o" "src/$f.c"
done
for f in shim stubs; do
    clang "${CFLAGS[@]}" -fsanitize=fuzzer-no-link -c -o "$OUT/$f.o" "test/fuzz/$f.c"
done
COMMON=("$OUT/provider_common.o" "$OUT/json_extract.o" "$OUT/shim.o" "$OUT/stubs.o")
for p in openai anthropic gemini; do
    clang "${CFLAGS[@]}" -fsanitize=fuzzer -DFUZZ_OPS="lg_${p}_ops" -o "$OUT/${p}_reply" \
        test/fuzz/fuzz_reply.c "$OUT/provider_$p.o" "${COMMON[@]}" "${LIBS[@]}"
done
clang "${CFLAGS[@]}" -fsanitize=fuzzer -o "$OUT/cache_key" \
    test/fuzz/fuzz_cache_key.c "$OUT/cache_key.o" "${COMMON[@]}" "${LIBS[@]}"

# The validator's module: no AddressSanitizer (it cannot run in the
# server), UBSan as traps, coverage for libFuzzer.
VCFLAGS=(-g -O1 -fPIC -fno-omit-frame-pointer -fsanitize=undefined -fsanitize-trap=undefined
         -fsanitize=fuzzer-no-link -I src -isystem "$SERVER_INC")
FUZZ_RT=$(dirname "$(clang -print-file-name=libclang_rt.fuzzer_no_main-x86_64.a)")
[ -f "$FUZZ_RT/libclang_rt.fuzzer_no_main-x86_64.a" ] \
    || FUZZ_RT=$(dirname "$(find /usr/lib/llvm-*/lib/clang -name 'libclang_rt.fuzzer_no_main-x86_64.a' | head -1)")
V=$OUT/validator
mkdir -p "$V"
for f in request provider_common json_extract; do
    clang "${VCFLAGS[@]}" -c -o "$V/$f.o" "src/$f.c"
done
clang "${VCFLAGS[@]}" -c -o "$V/fuzz_validator.o" test/fuzz/fuzz_validator.c
clang -shared -o "$V/fuzz_validator.so" "$V"/*.o \
    -Wl,--whole-archive "$FUZZ_RT/libclang_rt.fuzzer_no_main-x86_64.a" -Wl,--no-whole-archive \
    -lstdc++ -lm
cp -r test/fuzz/corpus/validator "$V/seeds"
cp test/fuzz/validator.dict "$V/"
mkdir -p "$V/work" "$V/crashes"
[ "$(id -u)" -eq 0 ] && chown -R "$TEST_USER" "$OUT"
"${RUN_AS[@]}" "$PG_BINDIR/initdb" -D "$V/data" -A trust -U postgres --no-sync -E UTF8 --no-locale >/dev/null

# run_validator ARG...: libFuzzer's arguments, in a single-user backend
run_validator() {
    local args="" a
    for a in "$@"; do args+="${args:+, }'$a'"; done
    {
        echo "CREATE FUNCTION fuzz_validator(text[]) RETURNS int AS '$V/fuzz_validator.so' LANGUAGE C STRICT;"
        echo "SELECT fuzz_validator(ARRAY[$args]);"
    } > "$V/run.sql"
    # a single-user backend exits 0 even when the module fails to load:
    # the caller also looks for libFuzzer's report
    "${RUN_AS[@]}" "$PG_BINDIR/postgres" --single -D "$V/data" postgres < "$V/run.sql"
}

corpus_of() { # TARGET -> its checked-in corpus directory
    case $1 in
        *_reply) echo "test/fuzz/corpus/${1%_reply}" ;;
        *) echo "test/fuzz/corpus/$1" ;;
    esac
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=0
for t in openai_reply anthropic_reply gemini_reply cache_key validator; do
    corpus=$(corpus_of "$t")
    if [ "$t" = validator ]; then
        echo "== ${MODE/run/fuzz} validator (in a single-user backend)"
        if [ "$MODE" = replay ]; then
            set -- -runs=0 "$V/seeds"
        else
            set -- -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 \
                -dict="$V/validator.dict" -artifact_prefix="$V/crashes/validator-" \
                "$V/work" "$V/seeds"
        fi
        # it must also have run: libFuzzer's "Done N runs" is the proof
        if ! run_validator "$@" >"$OUT/$t.log" 2>&1 || ! grep -qE '^Done [0-9]+ runs' "$OUT/$t.log"; then
            tail -40 "$OUT/$t.log"
            failed=$((failed + 1))
            mkdir -p "$ROOT/test/fuzz/crashes" && cp "$V"/crashes/* "$ROOT/test/fuzz/crashes/" 2>/dev/null || true
        fi
        grep -E '^Done [0-9]+ runs' "$OUT/$t.log" | sed 's/^/   /' || true
        continue
    fi
    if [ "$MODE" = replay ]; then
        echo "== replay $t ($(ls "$corpus" | wc -l) inputs)"
        "$OUT/$t" -runs=0 "$corpus" >"$OUT/$t.log" 2>&1 || { cat "$OUT/$t.log"; failed=$((failed + 1)); }
    else
        echo "== fuzz $t for ${SECONDS_EACH}s"
        mkdir -p "$OUT/work-$t" "$ROOT/test/fuzz/crashes"
        if ! "$OUT/$t" -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 \
                -artifact_prefix="$ROOT/test/fuzz/crashes/$t-" \
                "$OUT/work-$t" "$corpus" >"$OUT/$t.log" 2>&1; then
            tail -40 "$OUT/$t.log"
            failed=$((failed + 1))
        fi
        grep -E '^Done [0-9]+ runs' "$OUT/$t.log" | sed 's/^/   /' || true
    fi
done
echo "fuzz: $failed of 5 targets failed"
[ "$failed" -eq 0 ]
