#!/bin/sh
# Nine synchronous tasks, then ten concurrent ones: every task prints,
# and the asynchronous phase takes about one sleep (at most 20 ms), far
# less than the synchronous sum could.
set -e
out=$("${top_builddir:-.}/demo/sync_async")
echo "$out"
test "$(echo "$out" | grep -c '^Task [0-9] done$')" -eq 19
async=$(echo "$out" | sed -n 's/^asynchronous phase: \([0-9.]*\) s$/\1/p')
awk -v a="$async" 'BEGIN { exit !(a >= 0 && a < 0.5) }'
