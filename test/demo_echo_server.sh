#!/bin/bash
# Smoke test of demo/echo_server: two connections at once, each line
# comes back unchanged.  Uses bash's /dev/tcp (no netcat needed).
set -e
. "${top_srcdir:-.}/test/demo_server_lib.sh"
start_demo echo_server
exec 3<>"/dev/tcp/127.0.0.1/$DEMO_PORT"
exec 4<>"/dev/tcp/127.0.0.1/$DEMO_PORT"
printf 'hello from 3\n' >&3
printf 'hello from 4\n' >&4
read -r -t 5 a <&3
read -r -t 5 b <&4
exec 3>&- 4>&-
echo "$a / $b"
test "$a" = "hello from 3"
test "$b" = "hello from 4"
