#!/bin/sh
# demo/subprocess_many: twenty `sleep 0.5; echo job N` commands run at
# once: every output is there, in order, and the run takes about one
# command's time (under 5 s; one after the other they take 10 s).
set -e
out=$("${top_builddir:-.}/demo/subprocess_many")
echo "$out"
expected=$(seq 1 20 | sed 's/^/job /')
test "$(echo "$out" | grep '^job ')" = "$expected"
t=$(echo "$out" | sed -n 's/^20 commands in \([0-9.]*\) s$/\1/p')
awk -v t="$t" 'BEGIN { exit !(t >= 0.5 && t < 5) }'
