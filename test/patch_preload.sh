#!/bin/sh
# libgreen-patch under LD_PRELOAD, with GREEN_PATCH_ALL=1, in a program
# that was not linked against it; and the same program without it.
set -e
b=${top_builddir:-.}
prog="$b/test/patch_preload_prog"
lib="$b/lib/.libs/libgreen-patch.so"
if ldd "$prog" 2>/dev/null | grep -q 'lib[at]san'; then
    echo "SKIP: sanitizer runtimes must come first in LD_PRELOAD"; exit 77
fi
test -f "$lib"
"$prog" plain
LD_LIBRARY_PATH="$b/lib/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    LD_PRELOAD="$lib" GREEN_PATCH_ALL=1 "$prog" preloaded
