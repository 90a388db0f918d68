#!/bin/sh
# Only green_* symbols leave libgreen.so (libgreen-patch.so may also
# export the libc functions it interposes; test/patch_exports.sh).
# Arguments, for the other libraries: the library's name and the prefix
# every exported symbol must have (test/tls_exports.sh).
set -e
lib=${1:-libgreen}
prefix=${2:-green_}
so="${top_builddir:-.}/lib/.libs/$lib.so"
bad=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | grep -v "^$prefix" || true)
if test -n "$bad"; then
    echo "non-$prefix symbols exported by $lib.so:"; echo "$bad"; exit 1
fi
echo "$lib.so exports $(nm -D --defined-only "$so" | grep -c " $prefix") $prefix* symbols"
