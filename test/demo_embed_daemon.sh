#!/bin/bash
# Smoke test of demo/embed_daemon (a plain libev daemon serving each
# connection with a blocking-style echo greenlet): two connections at
# once echo what they get, the daemon's own stats timer keeps printing,
# and SIGTERM detaches libgreen so that the daemon's ev_run returns
# ("bye", exit 0).  Loopback only; the daemon is stopped by PID.
set -e
OUT=$(mktemp)
PID=
cleanup() {
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
    rm -f "$OUT"
}
trap cleanup EXIT
"${top_builddir:-.}/demo/embed_daemon" 0 0.1 > "$OUT" &
PID=$!
PORT=
for _ in $(seq 50); do
    PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$OUT")
    [ -n "$PORT" ] && break
    sleep 0.1
done
test -n "$PORT"
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
exec 4<>"/dev/tcp/127.0.0.1/$PORT"
printf 'hello from 3\n' >&3
printf 'hello from 4\n' >&4
read -r -t 5 a <&4
read -r -t 5 b <&3
test "$a" = "hello from 4"
test "$b" = "hello from 3"
printf 'again\n' >&3
read -r -t 5 c <&3
test "$c" = "again"
sleep 0.3 # a few stats ticks while both connections stay open
grep -q '^stats: accepted=2 active=2 bytes=32$' "$OUT"
exec 4>&-
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=
exec 3>&-
cat "$OUT"
test "$rc" -eq 0
tail -n 1 "$OUT" | grep -qx 'bye'
grep -q '^stats: accepted=2 active=[0-9]* bytes=32 (final)$' "$OUT"
