#!/bin/sh
# Print the libtool -version-info (current:revision:age) read from
# include/green.h, the one source of truth (libdill's abi_version.sh).
h="$(dirname "$0")/include/green.h"
get() { sed -n "s/^#define $1 \([0-9]*\)$/\1/p" "$h"; }
if test "x$1" = "x-libtool"; then
    printf '%s:%s:%s' "$(get GREEN_ABI_CURRENT)" "$(get GREEN_ABI_REVISION)" "$(get GREEN_ABI_AGE)"
else
    printf '%s.%s.%s' "$(get GREEN_VERSION_MAJOR)" "$(get GREEN_VERSION_MINOR)" "$(get GREEN_VERSION_PATCH)"
fi
