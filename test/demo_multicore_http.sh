#!/bin/bash
# Smoke test of demo/multicore_http with 2 threads (two hubs, two
# SO_REUSEPORT listeners on one port): 16 connections each send two
# pipelined keep-alive requests (the second asks to close) and get two
# 200 answers; on SIGTERM the per-thread figures add up to 16
# connections and 32 requests.  Loopback only; stopped by PID.
set -e
. "${top_srcdir:-.}/test/demo_server_lib.sh"
start_demo multicore_http 0 2
grep -qx 'threads 2' "$DEMO_OUT"
for i in $(seq 16); do
    exec 3<>"/dev/tcp/127.0.0.1/$DEMO_PORT"
    printf 'GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' >&3
    reply=$(timeout 5 cat <&3)
    exec 3>&-
    test "$(printf '%s' "$reply" | grep -o 'HTTP/1.1 200 OK' | wc -l)" -eq 2
    test "$(printf '%s' "$reply" | grep -o 'Hello, World!' | wc -l)" -eq 2
done
term_demo
cat "$DEMO_OUT"
test "$DEMO_RC" -eq 0
test "$(grep -c '^thread [01]: ' "$DEMO_OUT")" -eq 2
awk '/^thread [0-9]+: / { c += $4; r += $6 }
     END { exit !(c == 16 && r == 32) }' "$DEMO_OUT"
