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
trap wrk_cleanup EXIT INT TERM
need_tools http_syscalls wrk strace || exit 0

# count NAME PROGRAM: one strace'd run; prints the per-request figures.
count() {
    name=$1 prog=$2
    wrk_strace http_syscalls "" "-t1 -c$CONNS" "$prog" 0 || exit 1
    # strace -c: "% time seconds usecs/call calls [errors] syscall".
    awk -v r="${REQS:-0}" -v n="$name" -v c="$CONNS" '
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
