#!/bin/sh
# Only green_tls_* symbols leave libgreen-tls.so.
set -e
so="${top_builddir:-.}/lib/.libs/libgreen-tls.so"
bad=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | grep -v '^green_tls_' || true)
if test -n "$bad"; then
    echo "non-green_tls_ symbols exported by libgreen-tls.so:"; echo "$bad"; exit 1
fi
echo "libgreen-tls.so exports $(nm -D --defined-only "$so" | grep -c ' green_tls_') green_tls_* symbols"
