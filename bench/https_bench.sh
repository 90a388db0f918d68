#!/bin/sh
# make bench-https: keep-alive throughput of demo/https_hello (TLS with
# libgreen-tls) against demo/http_hello (the same server in clear), wrk
# -t1 -c50 for DUR s after a 1 s warm-up, REPS times each (paired, best
# run reported), server pinned to CPU 1 and wrk to CPU 0 when there are
# two cores, as bench/http_bench.sh does.  A throwaway CA-less
# self-signed certificate is made with the openssl CLI (wrk does not
# verify).  Prints req/s of both and the ratio https/http.
set -u
. "$(dirname "$0")/wrk_lib.sh"
B=${top_builddir:-.}
DUR=${HTTP_BENCH_DURATION:-5}
REPS=${HTTP_BENCH_REPS:-3}
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER="taskset -c 1" PIN_WRK="taskset -c 0"
fi
CLK=$(getconf CLK_TCK)
TMP=$(mktemp -d)
trap wrk_cleanup EXIT INT TERM
need_tools https_bench wrk openssl || exit 0
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 \
    -subj "/CN=localhost" 2>/dev/null
best_http=0 best_https=0
i=0
while [ $i -lt "$REPS" ]; do
    WRK_SCHEME=http wrk_measure https_bench "-t1 -c50" "$B/demo/http_hello" 0
    [ "${RPS%.*}" -gt "$best_http" ] && best_http=${RPS%.*}
    WRK_SCHEME=https wrk_measure https_bench "-t1 -c50" \
        "$B/demo/https_hello" 0 "$TMP/cert.pem" "$TMP/key.pem"
    [ -n "$ERRS" ] && echo "https_bench: $ERRS" >&2
    [ "${RPS%.*}" -gt "$best_https" ] && best_https=${RPS%.*}
    i=$((i + 1))
done
echo "http_green_c50_requests_per_s $best_http req/s"
echo "https_green_c50_requests_per_s $best_https req/s"
echo "https_ratio_https_http_c50 $(awk -v s="$best_https" -v p="$best_http" \
    'BEGIN { printf "%.3f", (p > 0 ? s / p : 0) }') ratio"
exit 0
