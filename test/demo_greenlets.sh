#!/bin/sh
# "hello" then "I live", then the computed value 3; about 2 s in all.
set -e
start=$(date +%s.%N)
out=$("${top_builddir:-.}/demo/greenlets")
end=$(date +%s.%N)
echo "$out"
test "$out" = "$(printf 'hello\nI live\nx + 1 = 3')"
awk -v s="$start" -v e="$end" 'BEGIN { d = e - s; exit !(d >= 1.9 && d < 4) }'
