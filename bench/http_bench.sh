#!/bin/sh
# make bench: HTTP keep-alive throughput of demo/http_hello (greenlets)
# against bench/http_libev (the same server as plain libev callbacks).
#
# For each concurrency (50 and 1000 connections) the two servers run in
# turn, alone, on a free loopback port, REPS times (default 3, paired:
# green then libev); each time wrk -t1 -dDURs hits it after a 1 s
# warm-up.  With two cores the server is pinned to CPU 1 and wrk to
# CPU 0 (taskset), so both servers get the same treatment.  Printed per
# server, from its best run: requests/s, latency p50/p99, and requests
# per server CPU-second (utime+stime from /proc/PID/stat before and
# after): wrk shares the machine, so raw req/s mostly measures wrk,
# while requests per CPU-second is the server's own cost.  Then the
# ratio green/libev of the best figures (target >= 0.90) and the median
# of the per-pair ratios (other tenants of a shared machine add noise:
# best-of and median damp it).  Last, the epoll_ctl calls per request of
# http_hello, counted by strace -c -f during a short run.  Every process
# is killed by PID; wrk runs are bounded by `timeout`.
set -u
. "$(dirname "$0")/wrk_lib.sh"
B=${top_builddir:-.}
DUR=${HTTP_BENCH_DURATION:-5}
REPS=${HTTP_BENCH_REPS:-3}
PIN_SERVER= PIN_WRK=
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER="taskset -c 1" PIN_WRK="taskset -c 0"
fi
CLK=$(getconf CLK_TCK)
TMP=$(mktemp -d)
trap wrk_cleanup EXIT INT TERM
need_tools http_bench wrk || exit 0

# run PROGRAM CONNS: one measured run; sets RPS P50 P99 CPU PER_CPU.
run() {
    prog=$1 conns=$2
    wrk_measure http_bench "-t1 -c$conns" "$prog" 0
    [ -n "$ERRS" ] && echo "http_bench: $prog c$conns: $ERRS" >&2
}

# report NAME CONNS: the best run's figures (kept in $TMP/best.NAME).
report() {
    read -r rps p50 p99 cpu per < "$TMP/best.$1"
    echo "http_${1}_c${2}_requests_per_s $rps req/s"
    echo "http_${1}_c${2}_latency_p50 $p50 ms"
    echo "http_${1}_c${2}_latency_p99 $p99 ms"
    echo "http_${1}_c${2}_cpu_s $cpu s"
    echo "http_${1}_c${2}_requests_per_cpu_s $per req/cpu-s"
}

keep_best() {
    if [ ! -s "$TMP/best.$1" ] ||
       [ "$PER_CPU" -gt "$(awk '{ print $5 }' "$TMP/best.$1")" ]; then
        echo "$RPS $P50 $P99 $CPU $PER_CPU" > "$TMP/best.$1"
    fi
}

for conns in 50 1000; do
    rm -f "$TMP/best.green" "$TMP/best.libev" "$TMP/ratios"
    i=0
    while [ $i -lt "$REPS" ]; do
        run "$B/demo/http_hello" "$conns"
        keep_best green
        g=$PER_CPU
        run "$B/bench/http_libev" "$conns"
        keep_best libev
        awk -v g="$g" -v l="$PER_CPU" \
            'BEGIN { printf "%.3f\n", (l > 0 ? g / l : 0) }' >> "$TMP/ratios"
        i=$((i + 1))
    done
    report green "$conns"
    report libev "$conns"
    green=$(awk '{ print $5 }' "$TMP/best.green")
    libev=$(awk '{ print $5 }' "$TMP/best.libev")
    echo "http_ratio_green_libev_c${conns} $(awk -v g="$green" -v l="$libev" \
        'BEGIN { printf "%.3f", (l > 0 ? g / l : 0) }') ratio"
    echo "http_ratio_green_libev_c${conns}_median $(sort -n "$TMP/ratios" |
        awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }') ratio"
done

# epoll_ctl per request: http_hello under strace -c -f for a short run.
DUR=2
if need_tools http_bench strace &&
   wrk_strace http_bench "-e trace=epoll_ctl" "-t1 -c50" \
       "$B/demo/http_hello" 0; then
    calls=$(awk '$NF == "epoll_ctl" { print $4 }' "$TMP/strace")
    echo "http_green_epoll_ctl_calls ${calls:-0} calls"
    echo "http_green_epoll_ctl_per_request $(awk -v c="${calls:-0}" \
        -v r="${REQS:-0}" 'BEGIN { printf "%.4f", (r > 0 ? c / r : 0) }') calls/req"
fi
exit 0
