#!/bin/sh
# The greenlet prints its message, sleeps its 3 s, and is joined.
set -e
start=$(date +%s.%N)
out=$("${top_builddir:-.}/demo/my_greenlet")
end=$(date +%s.%N)
echo "$out"
test "$out" = "$(printf 'hi,there\nMyGreenlet finished')"
awk -v s="$start" -v e="$end" 'BEGIN { d = e - s; exit !(d >= 2.9 && d < 6) }'
