# Sourced by the demo server smoke tests: start_demo NAME [ARGS...]
# starts demo/NAME with ARGS (default: 0, a free port) on loopback (it
# prints "listening on 127.0.0.1:PORT" into $DEMO_OUT), sets DEMO_PID and
# DEMO_PORT, and kills it by PID on exit.  term_demo sends SIGTERM, waits
# and puts the exit status in DEMO_RC.
DEMO_PID=
DEMO_OUT=$(mktemp)
stop_demo() {
    if [ -n "$DEMO_PID" ]; then
        kill "$DEMO_PID" 2>/dev/null
        wait "$DEMO_PID" 2>/dev/null || true
    fi
    rm -f "$DEMO_OUT"
}
trap stop_demo EXIT

start_demo() {
    name=$1
    shift
    [ $# -gt 0 ] || set -- 0
    "${top_builddir:-.}/demo/$name" "$@" > "$DEMO_OUT" &
    DEMO_PID=$!
    i=0
    while [ $i -lt 50 ]; do
        DEMO_PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$DEMO_OUT")
        [ -n "$DEMO_PORT" ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    echo "demo/$name did not start" >&2
    exit 1
}

term_demo() {
    kill -TERM "$DEMO_PID"
    DEMO_RC=0
    wait "$DEMO_PID" || DEMO_RC=$?
    DEMO_PID=
}
