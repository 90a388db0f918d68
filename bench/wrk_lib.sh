# Sourced by the wrk benchmarks (http_bench.sh, http_syscalls.sh,
# https_bench.sh, multicore_bench.sh).  The caller sets B (the build
# directory), DUR, CLK, TMP (a scratch directory) and, after sourcing,
# optionally PIN_SERVER / PIN_WRK (taskset prefixes) and WRK_SCHEME
# (https; default http); it traps wrk_cleanup on EXIT INT TERM.
PIN_SERVER=
PIN_WRK=
SPID=
STRACE_PID=
STRACED_PID=

# wrk_cleanup: kill the processes still running, by PID; remove $TMP.
wrk_cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null
    [ -n "$STRACED_PID" ] && kill "$STRACED_PID" 2>/dev/null
    [ -n "$STRACE_PID" ] && kill "$STRACE_PID" 2>/dev/null
    rm -rf "$TMP"
}

# need_tools NAME TOOL...: 0 if every TOOL is installed, else say which
# is not ("NAME: TOOL not installed, skipped") and return 1.
need_tools() {
    nt_name=$1
    shift
    for nt_tool in "$@"; do
        if ! command -v "$nt_tool" >/dev/null 2>&1; then
            echo "$nt_name: $nt_tool not installed, skipped" >&2
            return 1
        fi
    done
}

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

# wrk_strace NAME "STRACE_OPTS" "WRK_OPTS" SERVER [ARGS...]: run the
# server under `strace -f -c STRACE_OPTS -o $TMP/strace` (through
# libtool, so a libtool wrapper script is not counted) on a free
# loopback port, hit it with wrk WRK_OPTS for DUR s (bounded by
# timeout), then kill it by PID and let strace write its table.  Sets
# REQS (the requests wrk completed).  Returns 1, with a message, if the
# server does not start (ptrace refused?).
wrk_strace() {
    ws_name=$1 ws_sopts=$2 ws_wopts=$3
    shift 3
    "$B/libtool" --mode=execute strace -f -c $ws_sopts -o "$TMP/strace" \
        "$@" > "$TMP/out" 2>&1 &
    STRACE_PID=$!
    if ! ws_port=$(wait_port "$TMP/out"); then
        echo "$ws_name: $1 did not start under strace (ptrace refused?)" >&2
        return 1
    fi
    # The server is strace's child (libtool execs strace); wait for it.
    ws_i=0
    while [ -z "$STRACED_PID" ] && [ $ws_i -lt 50 ]; do
        STRACED_PID=$(pgrep -P "$STRACE_PID" | head -n 1)
        [ -n "$STRACED_PID" ] || sleep 0.1
        ws_i=$((ws_i + 1))
    done
    if [ -z "$STRACED_PID" ]; then
        echo "$ws_name: no server process under strace" >&2
        return 1
    fi
    timeout $((DUR + 20)) wrk $ws_wopts -d"${DUR}s" \
        "${WRK_SCHEME:-http}://127.0.0.1:$ws_port/" > "$TMP/wrk" 2>&1
    REQS=$(awk '/requests in/ { print $1 }' "$TMP/wrk")
    kill "$STRACED_PID"
    wait "$STRACE_PID" 2>/dev/null
    STRACE_PID= STRACED_PID=
}
