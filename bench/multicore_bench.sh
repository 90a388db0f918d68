#!/bin/sh
# make bench: wrk against demo/multicore_http with 1 and then 2 serving
# threads (one hub each, SO_REUSEPORT on one loopback port).
#
# Each run: the server alone on a free loopback port, a 1 s warm-up, then
# wrk -t2 -c100 -dDURs (MULTICORE_BENCH_DURATION, default 5).  Printed per
# thread count: requests/s, latency p50/p99, the server's CPU seconds
# (utime+stime from /proc/PID/stat before and after) and requests per
# server CPU-second.  wrk runs on the same 2 cores as the server, so with
# 2 server threads the two compete with wrk's own threads: raw req/s
# mostly shows how the 2 cores are shared, and requests per CPU-second
# shows the server's own cost.  Every process is bounded by `timeout`
# and killed by PID.
set -u
. "$(dirname "$0")/wrk_lib.sh"
B=${top_builddir:-.}
DUR=${MULTICORE_BENCH_DURATION:-5}
CLK=$(getconf CLK_TCK)
TMP=$(mktemp -d)
trap wrk_cleanup EXIT INT TERM
need_tools multicore_bench wrk || exit 0

for threads in 1 2; do
    wrk_measure multicore_bench "-t2 -c100" "$B/demo/multicore_http" 0 "$threads"
    name="multicore_http_${threads}thread"
    [ -n "$ERRS" ] && echo "multicore_bench: $threads threads: $ERRS" >&2
    echo "${name}_requests_per_s ${RPS:-0} req/s"
    echo "${name}_latency_p50 $P50 ms"
    echo "${name}_latency_p99 $P99 ms"
    echo "${name}_cpu_s $CPU s"
    echo "${name}_requests_per_cpu_s $PER_CPU req/cpu-s"
done
exit 0
