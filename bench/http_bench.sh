#!/bin/sh
# make bench: HTTP keep-alive throughput of demo/http_hello (greenlets)
# against bench/http_libev (the same server as plain libev callbacks).
#
# For each concurrency (50 and 1000 connections) each server runs alone
# on a free loopback port; wrk -t1 -dDURs hits it after a 1 s warm-up.
# Printed per server: requests/s, latency p50/p99, and requests per
# server CPU-second (utime+stime from /proc/PID/stat before and after):
# wrk shares the 2 cores, so raw req/s mostly measures wrk, while
# requests per CPU-second is the server's own cost.  Then the ratio
# green/libev of that figure (target >= 0.90), and the epoll_ctl calls
# per request of http_hello, counted by strace -c -f during a short run.
# Every process is bounded by `timeout` and killed by PID.
set -u
B=${top_builddir:-.}
DUR=${HTTP_BENCH_DURATION:-5}
CLK=$(getconf CLK_TCK)
TMP=$(mktemp -d)
SPID=
STRACE_PID=
cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null
    [ -n "$STRACE_PID" ] && kill "$STRACE_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

if ! command -v wrk >/dev/null 2>&1; then
    echo "http_bench: wrk not installed, skipped" >&2
    exit 0
fi

# wait_port FILE: the port from the server's "listening on HOST:PORT".
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

# wrk latency "1.23ms" / "800.00us" / "1.05s" in milliseconds.
to_ms() {
    echo "$1" | awk '{ v = $1 + 0
        if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /ms$/) v = v;
        else if ($1 ~ /s$/) v *= 1000; printf "%.3f", v }'
}

# run NAME PROGRAM CONNS: prints the figures, leaves per-CPU in $PER_CPU.
run() {
    name=$1 prog=$2 conns=$3
    "$prog" 0 > "$TMP/out" 2>&1 &
    SPID=$!
    port=$(wait_port "$TMP/out") || { echo "http_bench: $prog did not start" >&2; exit 1; }
    url="http://127.0.0.1:$port/"
    timeout 10 wrk -t1 -c"$conns" -d1s "$url" > /dev/null 2>&1
    t0=$(cpu_ticks "$SPID")
    timeout $((DUR + 20)) wrk -t1 -c"$conns" -d"${DUR}s" --latency "$url" \
        > "$TMP/wrk" 2>&1
    t1=$(cpu_ticks "$SPID")
    kill "$SPID"
    wait "$SPID" 2>/dev/null
    SPID=
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$TMP/wrk")
    reqs=$(awk '/requests in/ { print $1 }' "$TMP/wrk")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$TMP/wrk")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$TMP/wrk")")
    errs=$(awk '/Socket errors|Non-2xx/' "$TMP/wrk")
    [ -n "$errs" ] && echo "http_bench: $name c$conns: $errs" >&2
    PER_CPU=$(awk -v r="$reqs" -v t=$((t1 - t0)) -v hz="$CLK" \
        'BEGIN { printf "%.0f", (t > 0 ? r / (t / hz) : 0) }')
    echo "http_${name}_c${conns}_requests_per_s $rps req/s"
    echo "http_${name}_c${conns}_latency_p50 $p50 ms"
    echo "http_${name}_c${conns}_latency_p99 $p99 ms"
    echo "http_${name}_c${conns}_cpu_s $(awk -v t=$((t1 - t0)) -v hz="$CLK" \
        'BEGIN { printf "%.2f", t / hz }') s"
    echo "http_${name}_c${conns}_requests_per_cpu_s $PER_CPU req/cpu-s"
}

for conns in 50 1000; do
    run green "$B/demo/http_hello" "$conns"
    green=$PER_CPU
    run libev "$B/bench/http_libev" "$conns"
    libev=$PER_CPU
    echo "http_ratio_green_libev_c${conns} $(awk -v g="$green" -v l="$libev" \
        'BEGIN { printf "%.3f", (l > 0 ? g / l : 0) }') ratio"
done

# epoll_ctl per request: http_hello under strace -c -f for a short run.
if command -v strace >/dev/null 2>&1; then
    strace -f -c -e trace=epoll_ctl -o "$TMP/strace" \
        "$B/demo/http_hello" 0 > "$TMP/out" 2>&1 &
    STRACE_PID=$!
    if port=$(wait_port "$TMP/out"); then
        server=$(cat "/proc/$STRACE_PID/task/$STRACE_PID/children" 2>/dev/null |
                 awk '{ print $1 }')
        [ -n "$server" ] || server=$(pgrep -P "$STRACE_PID" | head -n 1)
        timeout 20 wrk -t1 -c50 -d2s "http://127.0.0.1:$port/" > "$TMP/wrk" 2>&1
        reqs=$(awk '/requests in/ { print $1 }' "$TMP/wrk")
        kill "$server"
        wait "$STRACE_PID" 2>/dev/null
        STRACE_PID=
        calls=$(awk '$NF == "epoll_ctl" { print $4 }' "$TMP/strace")
        echo "http_green_epoll_ctl_calls ${calls:-0} calls"
        echo "http_green_epoll_ctl_per_request $(awk -v c="${calls:-0}" \
            -v r="$reqs" 'BEGIN { printf "%.4f", (r > 0 ? c / r : 0) }') calls/req"
    else
        echo "http_bench: strace run did not start (ptrace refused?)" >&2
    fi
fi
exit 0
