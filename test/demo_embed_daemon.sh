#!/bin/bash
# Smoke test of demo/embed_daemon (a plain libev daemon serving each
# connection with a blocking-style echo greenlet): two connections at
# once echo what they get, the daemon's own stats timer keeps printing,
# and SIGTERM detaches libgreen so that the daemon's ev_run returns
# ("bye", exit 0).  Loopback only; the daemon is stopped by PID.
set -e
. "${top_srcdir:-.}/test/demo_server_lib.sh"
start_demo embed_daemon 0 0.1
exec 3<>"/dev/tcp/127.0.0.1/$DEMO_PORT"
exec 4<>"/dev/tcp/127.0.0.1/$DEMO_PORT"
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
grep -q '^stats: accepted=2 active=2 bytes=32$' "$DEMO_OUT"
exec 4>&-
term_demo
exec 3>&-
cat "$DEMO_OUT"
test "$DEMO_RC" -eq 0
tail -n 1 "$DEMO_OUT" | grep -qx 'bye'
grep -q '^stats: accepted=2 active=[0-9]* bytes=32 (final)$' "$DEMO_OUT"
