# Sourced by the wrk benchmarks (http_bench.sh, multicore_bench.sh).
# The caller sets DUR, CLK, TMP (a scratch directory) and, after sourcing,
# optionally PIN_SERVER / PIN_WRK (taskset prefixes) and WRK_SCHEME
# (https; default http); it kills $SPID on exit.
PIN_SERVER=
PIN_WRK=
SPID=

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

# wrk_measure NAME "WRK_OPTS" SERVER [ARGS...]: start the server (pinned
# by PIN_SERVER) alone on a free loopback port, warm up with wrk for 1 s,
# then measure for DUR s (wrk pinned by PIN_WRK, bounded by timeout) and
# kill the server by PID.  Sets RPS, REQS, P50, P99 (ms), ERRS (wrk's
# error lines), CPU (server CPU seconds) and PER_CPU (requests per server
# CPU-second).  Exits if the server does not start.
wrk_measure() {
    wm_name=$1 wm_opts=$2
    shift 2
    $PIN_SERVER "$@" > "$TMP/out" 2>&1 &
    SPID=$!
    port=$(wait_port "$TMP/out") ||
        { echo "$wm_name: $1 did not start" >&2; exit 1; }
    url="${WRK_SCHEME:-http}://127.0.0.1:$port/"
    timeout 10 $PIN_WRK wrk $wm_opts -d1s "$url" > /dev/null 2>&1
    t0=$(cpu_ticks "$SPID")
    timeout $((DUR + 20)) $PIN_WRK wrk $wm_opts -d"${DUR}s" --latency \
        "$url" > "$TMP/wrk" 2>&1
    t1=$(cpu_ticks "$SPID")
    kill "$SPID"
    wait "$SPID" 2>/dev/null
    SPID=
    RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$TMP/wrk")
    REQS=$(awk '/requests in/ { print $1 }' "$TMP/wrk")
    P50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$TMP/wrk")")
    P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$TMP/wrk")")
    ERRS=$(awk '/Socket errors|Non-2xx/' "$TMP/wrk")
    CPU=$(awk -v t=$((t1 - t0)) -v hz="$CLK" 'BEGIN { printf "%.2f", t / hz }')
    PER_CPU=$(awk -v r="${REQS:-0}" -v t=$((t1 - t0)) -v hz="$CLK" \
        'BEGIN { printf "%.0f", (t > 0 ? r / (t / hz) : 0) }')
}
