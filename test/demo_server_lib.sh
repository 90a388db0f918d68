# Sourced by the demo server smoke tests: start_demo NAME starts
# demo/NAME on a free loopback port (it prints "listening on
# 127.0.0.1:PORT"), sets DEMO_PID and DEMO_PORT, and kills it by PID on
# exit.
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
    "${top_builddir:-.}/demo/$1" 0 > "$DEMO_OUT" &
    DEMO_PID=$!
    i=0
    while [ $i -lt 50 ]; do
        DEMO_PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$DEMO_OUT")
        [ -n "$DEMO_PORT" ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    echo "demo/$1 did not start" >&2
    exit 1
}
