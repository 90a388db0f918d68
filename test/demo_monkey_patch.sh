#!/bin/sh
# demo/monkey_patch: inactive, then about 3 s of select() blocking the
# hub in turn; active, then about 1 s for the same three calls.
set -e
out=$("${top_builddir:-.}/demo/monkey_patch")
echo "$out"
echo "$out" | sed -n 1p | grep -qx 'green_patch_active() = 0'
echo "$out" | sed -n 3p | grep -qx 'green_patch_active() = 1'
before=$(echo "$out" | sed -n 's/^before green_patch_all: .* took \([0-9.]*\) s$/\1/p')
after=$(echo "$out" | sed -n 's/^after green_patch_all: .* took \([0-9.]*\) s$/\1/p')
test -n "$before" && test -n "$after"
# Not early (each select really waited), not late (they overlapped).
slack=${GREEN_TEST_SLACK:-0.5}
awk -v b="$before" -v a="$after" -v s="$slack" 'BEGIN {
    if (b < 2.95) { print "before phase too short: " b; exit 1 }
    if (a < 0.99 || a > 1.0 + s) { print "after phase out of bounds: " a; exit 1 }
}'
