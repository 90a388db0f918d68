#!/bin/bash
# Smoke test of demo/http_hello: two pipelined requests on one
# keep-alive connection, the second asking to close; two 200 answers,
# then the server closes the connection.  Then curl, if installed.
set -e
. "${top_srcdir:-.}/test/demo_server_lib.sh"
start_demo http_hello
exec 3<>"/dev/tcp/127.0.0.1/$DEMO_PORT"
printf 'GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' >&3
out=$(timeout 5 cat <&3)
exec 3>&-
echo "$out"
test "$(echo "$out" | grep -o 'HTTP/1.1 200 OK' | wc -l)" -eq 2
test "$(echo "$out" | grep -o 'Hello, World!' | wc -l)" -eq 2
if command -v curl >/dev/null 2>&1; then
    body=$(curl -s --max-time 5 "http://127.0.0.1:$DEMO_PORT/" \
                               "http://127.0.0.1:$DEMO_PORT/again")
    test "$body" = "Hello, World!Hello, World!"
fi
