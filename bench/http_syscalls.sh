#!/bin/sh
# make bench-syscalls: system calls per HTTP keep-alive request of
# demo/http_hello (greenlets) and bench/http_libev (plain libev), each
# run alone under `strace -f -c` while `wrk -t1 -cCONNS -dDURs` hits it
# (CONNS from HTTP_SYSCALLS_CONNS, default 50; DUR from
# HTTP_SYSCALLS_DURATION, default 2).  Printed per server: the calls
# counted by strace divided by the requests wrk completed, then the ones
# that make up most of it (>= 0.001 per request).  Startup calls are
# included: over tens of thousands of requests they weigh under 0.002
# per request.  Every
# process is killed by PID; wrk is bounded by `timeout`.
set -u
. "$(dirname "$0")/wrk_lib.sh"
B=${top_builddir:-.}
CONNS=${HTTP_SYSCALLS_CONNS:-50}
DUR=${HTTP_SYSCALLS_DURATION:-2}
TMP=$(mktemp -d)
STRACE_PID=
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null
    [ -n "$STRACE_PID" ] && kill "$STRACE_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

for tool in wrk strace; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "http_syscalls: $tool not installed, skipped" >&2
        exit 0
    fi
done

# count NAME PROGRAM: one strace'd run; prints the per-request figures.
count() {
    name=$1 prog=$2
    # Through libtool: a libtool wrapper script would be counted too.
    "$B/libtool" --mode=execute strace -f -c -o "$TMP/strace" "$prog" 0 \
        > "$TMP/out" 2>&1 &
    STRACE_PID=$!
    if ! port=$(wait_port "$TMP/out"); then
        echo "http_syscalls: $prog did not start (ptrace refused?)" >&2
        exit 1
    fi
    # The server is strace's child (libtool execs strace); wait for it.
    server= i=0
    while [ -z "$server" ] && [ $i -lt 50 ]; do
        server=$(pgrep -P "$STRACE_PID" | head -n 1)
        [ -n "$server" ] || sleep 0.1
        i=$((i + 1))
    done
    if [ -z "$server" ]; then
        echo "http_syscalls: no server process under strace" >&2
        exit 1
    fi
    timeout $((DUR + 20)) wrk -t1 -c"$CONNS" -d"${DUR}s" \
        "http://127.0.0.1:$port/" > "$TMP/wrk" 2>&1
    reqs=$(awk '/requests in/ { print $1 }' "$TMP/wrk")
    kill "$server"
    wait "$STRACE_PID" 2>/dev/null
    STRACE_PID= server=
    # strace -c: "% time seconds usecs/call calls [errors] syscall".
    awk -v r="${reqs:-0}" -v n="$name" -v c="$CONNS" '
        $NF == "total" { total = $4 }
        $1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
            calls[$NF] = $4; errs[$NF] = (NF == 6 ? $5 : 0) }
        END {
            if (r <= 0) { print "http_syscalls: no requests" > "/dev/stderr"; exit 1 }
            printf "http_%s_c%s_requests %d req\n", n, c, r
            printf "http_%s_c%s_syscalls_per_request %.3f calls/req\n", n, c, total / r
            for (s in calls)
                if (calls[s] / r >= 0.001)
                    printf "http_%s_c%s_%s_per_request %.3f calls/req (%.3f failed)\n",
                           n, c, s, calls[s] / r, errs[s] / r
        }' "$TMP/strace"
}

count green "$B/demo/http_hello"
count libev "$B/bench/http_libev"
exit 0
