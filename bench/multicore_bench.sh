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
B=${top_builddir:-.}
DUR=${MULTICORE_BENCH_DURATION:-5}
CLK=$(getconf CLK_TCK)
TMP=$(mktemp -d)
SPID=
cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

if ! command -v wrk >/dev/null 2>&1; then
    echo "multicore_bench: wrk not installed, skipped" >&2
    exit 0
fi

wait_port() {
    i=0
    while [ $i -lt 50 ]; do
        p=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$1")
        if [ -n "$p" ]; then
            echo "$p"
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

to_ms() {
    echo "$1" | awk '{ v = $1 + 0
        if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /ms$/) v = v;
        else if ($1 ~ /s$/) v *= 1000; printf "%.3f", v }'
}

for threads in 1 2; do
    "$B/demo/multicore_http" 0 "$threads" > "$TMP/out" 2>&1 &
    SPID=$!
    port=$(wait_port "$TMP/out") ||
        { echo "multicore_bench: server did not start" >&2; exit 1; }
    url="http://127.0.0.1:$port/"
    timeout 10 wrk -t2 -c100 -d1s "$url" > /dev/null 2>&1
    t0=$(cpu_ticks "$SPID")
    timeout $((DUR + 20)) wrk -t2 -c100 -d"${DUR}s" --latency "$url" \
        > "$TMP/wrk" 2>&1
    t1=$(cpu_ticks "$SPID")
    kill "$SPID"
    wait "$SPID" 2>/dev/null
    SPID=
    name="multicore_http_${threads}thread"
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$TMP/wrk")
    reqs=$(awk '/requests in/ { print $1 }' "$TMP/wrk")
    errs=$(awk '/Socket errors|Non-2xx/' "$TMP/wrk")
    [ -n "$errs" ] && echo "multicore_bench: $threads threads: $errs" >&2
    echo "${name}_requests_per_s ${rps:-0} req/s"
    echo "${name}_latency_p50 $(to_ms "$(awk '$1 == "50%" { print $2 }' "$TMP/wrk")") ms"
    echo "${name}_latency_p99 $(to_ms "$(awk '$1 == "99%" { print $2 }' "$TMP/wrk")") ms"
    echo "${name}_cpu_s $(awk -v t=$((t1 - t0)) -v hz="$CLK" \
        'BEGIN { printf "%.2f", t / hz }') s"
    echo "${name}_requests_per_cpu_s $(awk -v r="${reqs:-0}" -v t=$((t1 - t0)) \
        -v hz="$CLK" 'BEGIN { printf "%.0f", (t > 0 ? r / (t / hz) : 0) }') req/cpu-s"
done
exit 0
