#!/bin/sh
# demo/https_hello and demo/https_get: a throwaway CA and a server
# certificate for 127.0.0.1 made with the openssl CLI in a private
# directory; https_get verifies the server with --cafile and prints the
# body; without the CA, verification fails (host name mismatches are
# test/check_tls's).  The server is stopped by PID (demo_server_lib.sh).
set -e
OPENSSL=${OPENSSL_CLI:-openssl}
if ! command -v "$OPENSSL" >/dev/null 2>&1; then
    echo "openssl CLI not found: skipped"
    exit 77
fi
. "${top_srcdir:-.}/test/demo_server_lib.sh"
dir=$(mktemp -d)
trap 'stop_demo; rm -rf "$dir"' EXIT
cd "$dir"
"$OPENSSL" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout ca.key -out ca.pem -days 2 -subj "/CN=demo CA" 2>/dev/null
"$OPENSSL" req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout key.pem -out req.pem -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > ext.cnf
"$OPENSSL" x509 -req -in req.pem -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days 2 -extfile ext.cnf -out cert.pem 2>/dev/null
cd - >/dev/null
B=${top_builddir:-.}
start_demo https_hello 0 "$dir/cert.pem" "$dir/key.pem"
body=$("$B/demo/https_get" --cafile "$dir/ca.pem" "https://127.0.0.1:$DEMO_PORT/")
echo "verified: $body"
test "$body" = "Hello, World!"
body=$("$B/demo/https_get" --cafile "$dir/ca.pem" "https://localhost:$DEMO_PORT/x")
test "$body" = "Hello, World!"
# Without the CA: the system store does not know it.
if "$B/demo/https_get" "https://127.0.0.1:$DEMO_PORT/" 2> "$dir/err"; then
    echo "https_get trusted an unknown CA" >&2
    exit 1
fi
grep 'certificate verify failed' "$dir/err"
