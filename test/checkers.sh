# checkers.sh — make test SANITIZE=1 and make test VALGRIND=1 (sourced by
# run-tests.sh).
#
# SANITIZE=1 builds the extension with UBSan (undefined behaviour: overflow,
# misaligned or null access, bad shifts, out-of-range enums and bounds of
# fixed arrays), aborting at the first report.  The server is not
# instrumented, so the runtime is preloaded into the processes the tests
# start.  Every report lands in test/tmp/sanitizer.PID and counts as a
# failure.  AddressSanitizer cannot run inside Debian's postgres binary:
# preloaded (gcc's or clang's runtime), `postgres -V` already deadlocks on
# glibc's gettext lock at start-up.  Memory errors inside the server are
# valgrind's job (VALGRIND=1); AddressSanitizer runs on the parsers outside
# the server, in the fuzz targets (make fuzz), whose corpora SANITIZE=1
# replays under it (test/fuzz/run.sh replay).
#
# VALGRIND=1 runs the pg_regress server under valgrind's memcheck: pg_regress
# is pointed at a bin directory whose "postgres" is a script starting the
# real one under valgrind.  PostgreSQL's own known reports are suppressed
# (test/valgrind.supp); any other report with a frame in the extension's
# code counts as a failure, the rest are counted apart (Debian's server is
# not annotated for valgrind, so palloc'd memory is only checked where it
# meets malloc'd memory, libcurl and OpenSSL).  TAP clusters run under it
# too (pg_ctl is copied into the bin directory): five chosen scripts by
# default (run-tests.sh; VALGRIND_TAP picks others), since all of them take
# an hour and the load scripts' timing cannot hold.

SANITIZE=${SANITIZE:-0}
VALGRIND=${VALGRIND:-0}
[ "$SANITIZE" = 0 ] && SANITIZE=
[ "$VALGRIND" = 0 ] && VALGRIND=
CHECK_ENV=()        # prefix for the commands that start servers
CHECK_CFLAGS=       # extra compiler and linker flags of the mode
CHECK_LDFLAGS=
EXTRA_REGRESS=
CHECK_TAP_MAKE=()   # make variables of the TAP run in the mode
if [ -n "$SANITIZE" ]; then
    CHECK_CFLAGS="-fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
    CHECK_LDFLAGS="-fsanitize=undefined"
elif [ -n "$VALGRIND" ]; then
    CHECK_CFLAGS="-g"
fi

# lg_checkers_setup DIR: the environment (and bin directory) of the mode;
# reports go to DIR.
lg_checkers_setup() {
    local dir=$1 ubsan
    if [ -n "$SANITIZE" ]; then
        ubsan=$(gcc -print-file-name=libubsan.so)
        [ -f "$ubsan" ] || return 1
        CHECK_ENV=(env "LD_PRELOAD=$ubsan"
            "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$dir/sanitizer")
    elif [ -n "$VALGRIND" ]; then
        command -v valgrind >/dev/null || return 1
        lg_valgrind_bindir "$dir/vgbin" "$dir" || return 1
        EXTRA_REGRESS="--bindir=$dir/vgbin"
        CHECK_TAP_MAKE=(bindir="$dir/vgbin")
    fi
}

# lg_valgrind_bindir BIN LOGDIR: a bin directory like PostgreSQL's whose
# postgres runs under memcheck (except for the quick modes initdb uses).
lg_valgrind_bindir() {
    local bin=$1 logs=$2 f
    mkdir -p "$bin"
    cp "$LG_ROOT/test/valgrind.supp" "$logs/"
    for f in "$PG_BINDIR"/*; do
        case $(basename "$f") in
            postgres) ;;
            # pg_ctl starts the postgres of its own directory, after
            # resolving symbolic links: a copy finds the script below
            pg_ctl) cp "$f" "$bin/" ;;
            *) ln -sf "$f" "$bin/" ;;
        esac
    done
    cat > "$bin/postgres" <<SH
#!/bin/sh
case "\$1" in
    -V|--version|--boot|--single|-C|--describe-config) exec "$PG_BINDIR/postgres" "\$@" ;;
esac
exec valgrind --quiet --tool=memcheck --num-callers=30 --trace-children=no \\
    --suppressions="$logs/valgrind.supp" \\
    --read-var-info=no --error-limit=no --log-file="$logs/valgrind.%p.log" \\
    "$PG_BINDIR/postgres" "\$@"
SH
    chmod +x "$bin/postgres"
}

# lg_checkers_reports DIR: print the mode's findings; the number that count
# as failures on the last line.
lg_checkers_reports() {
    local dir=$1 n=0 f
    if [ -n "$SANITIZE" ]; then
        for f in "$dir"/sanitizer.*; do
            [ -s "$f" ] || continue
            echo "== sanitizer report $f" >&2
            cat "$f" >&2
            n=$((n + 1))
        done
    elif [ -n "$VALGRIND" ]; then
        n=$(python3 "$LG_ROOT/test/valgrind_reports.py" "$dir"/valgrind.*.log)
    fi
    echo "$n"
}
