#!/bin/bash
# Smoke test of demo/multicore_http with 2 threads (two hubs, two
# SO_REUSEPORT listeners on one port): 16 connections each send two
# pipelined keep-alive requests (the second asks to close) and get two
# 200 answers; on SIGTERM the per-thread figures add up to 16
# connections and 32 requests.  Loopback only; stopped by PID.
set -e
OUT=$(mktemp)
PID=
cleanup() {
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
    rm -f "$OUT"
}
trap cleanup EXIT
"${top_builddir:-.}/demo/multicore_http" 0 2 > "$OUT" &
PID=$!
PORT=
for _ in $(seq 50); do
    PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$OUT")
    [ -n "$PORT" ] && break
    sleep 0.1
done
test -n "$PORT"
grep -qx 'threads 2' "$OUT"
for i in $(seq 16); do
    exec 3<>"/dev/tcp/127.0.0.1/$PORT"
    printf 'GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' >&3
    reply=$(timeout 5 cat <&3)
    exec 3>&-
    test "$(printf '%s' "$reply" | grep -o 'HTTP/1.1 200 OK' | wc -l)" -eq 2
    test "$(printf '%s' "$reply" | grep -o 'Hello, World!' | wc -l)" -eq 2
done
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=
cat "$OUT"
test "$rc" -eq 0
test "$(grep -c '^thread [01]: ' "$OUT")" -eq 2
awk '/^thread [0-9]+: / { c += $4; r += $6 }
     END { exit !(c == 16 && r == 32) }' "$OUT"
