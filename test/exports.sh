#!/bin/sh
# Only green_* symbols leave libgreen.so (libgreen-patch.so may also
# export the libc functions it interposes).
set -e
so="${top_builddir:-.}/lib/.libs/libgreen.so"
bad=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | grep -v '^green_' || true)
if test -n "$bad"; then
    echo "non-green_ symbols exported by libgreen.so:"; echo "$bad"; exit 1
fi
echo "libgreen.so exports $(nm -D --defined-only "$so" | grep -c ' green_') green_* symbols"
