#!/bin/sh
# gdb sees every greenlet (issue 15).  gdb runs test/gdb_greenlets_prog
# itself (no attach, so this works where ptrace is restricted to a
# debugger's own children), stops it with greenlets parked in a sleep, an
# event wait, a pipe read, a join and a queue get, and
# test/gdb_greenlets_show.py prints `info greenlets` and `greenlet bt` of
# each.  The listing must show each greenlet and its wait, and each
# backtrace its own function.  Then the same on a core file (gcore).
# Skipped (77) only when there is no gdb.
set -e
gdb=${GDB:-gdb}
if ! command -v "$gdb" >/dev/null 2>&1; then
    echo "SKIP: no gdb"
    exit 77
fi
prog=${top_builddir:-.}/test/gdb_greenlets_prog
src=${top_srcdir:-.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A hung gdb must fail the test, not the whole make check.
limit=
if command -v timeout >/dev/null 2>&1; then
    limit="timeout 120"
fi

# run_gdb OUT [gdb arguments]: batch gdb with the extension loaded.
run_gdb() {
    out=$1
    shift
    $limit "$gdb" -nx -batch -iex 'set debuginfod enabled off' \
        -x "$src/lib/diag/libgreen-gdb.py" "$@" > "$out" 2>&1 || true
}

# check OUT WHAT: the assertions, on one gdb transcript.
check() {
    out=$1
    what=$2
    fail=0
    for row in 'sleeper +waiting +sleeping +[0-9.]+s +[0-9]+K' \
               'event-waiter +waiting +waiting for an event' \
               'pipe-reader +waiting +waiting to read on fd [0-9]+' \
               'joiner +waiting +joining' \
               'queue-getter +waiting +getting from an empty queue' \
               '^\* +[0-9]+ +main +running'; do
        if ! grep -Eq "$row" "$out"; then
            echo "FAIL ($what): no line matching '$row' in info greenlets"
            fail=1
        fi
    done
    for pair in sleeper:sleeper_main event-waiter:event_waiter_main \
                pipe-reader:reader_main joiner:joiner_main \
                queue-getter:getter_main; do
        name=${pair%%:*}
        fn=${pair#*:}
        if ! sed -n "/^=== bt $name\$/,/^===/p" "$out" |
                grep -q " in $fn "; then
            echo "FAIL ($what): greenlet bt of $name does not show $fn"
            fail=1
        fi
    done
    if ! sed -n '/^=== select pipe-reader$/,/^=== after/p' "$out" |
            grep -q ' in reader_main '; then
        echo "FAIL ($what): greenlet ID did not select reader_main's frames"
        fail=1
    fi
    if ! sed -n '/^=== after greenlet off$/,/^=== end/p' "$out" |
            grep -q 'gdb_greenlets_stop_here'; then
        echo "FAIL ($what): greenlet off did not restore the thread's frames"
        fail=1
    fi
    if test $fail = 1; then
        echo "--- gdb transcript ($what):"
        cat "$out"
        exit 1
    fi
    echo "--- $what: OK"
    sed -n '/^=== info greenlets$/,/^=== bt sleeper$/p' "$out"
    sed -n '/^=== bt pipe-reader$/,/^=== bt joiner$/p' "$out"
}

# 1. Live.
run_gdb "$tmp/live" -ex 'break gdb_greenlets_stop_here' -ex run \
    -x "$src/test/gdb_greenlets_show.py" -ex kill "$prog"
if grep -q 'ptrace: Operation not permitted\|Could not trace' "$tmp/live" &&
        ! grep -q '^=== info greenlets' "$tmp/live"; then
    cat "$tmp/live"
    echo "FAIL: gdb cannot run the program here (ptrace refused)"
    exit 1
fi
check "$tmp/live" live

# 2. A core file.  Not with a sanitizer: gcore would save its shadow
# memory, tens of gigabytes.
if ldd "$prog" 2>/dev/null | grep -q 'lib[at]san'; then
    echo "core file: not tried in a sanitizer build (shadow memory)"
    exit 0
fi
# 2. A core file.  gcore reads memory through /proc/PID/mem, which fails
# on a whole mapping containing a MADV_GUARD_INSTALL guard (Linux 6.13+)
# and saves it as zeros; the kernel's own core dumps are fine.  So this
# process uses the mprotect guards, whose guard pages are separate
# mappings.
GREEN_STACK_GUARD=mprotect run_gdb "$tmp/gcore" \
    -ex 'break gdb_greenlets_stop_here' -ex run \
    -ex "gcore $tmp/core" -ex kill "$prog"
if ! test -s "$tmp/core"; then
    cat "$tmp/gcore"
    echo "FAIL: gcore wrote no core file"
    exit 1
fi
run_gdb "$tmp/fromcore" -x "$src/test/gdb_greenlets_show.py" \
    "$prog" "$tmp/core"
check "$tmp/fromcore" "core file"
