#!/bin/sh
# run_demo.sh NAME: run demo/NAME and compare its output with
# demo/NAME.expected.
set -e
name=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"${top_builddir:-.}/demo/$name" > "$out"
diff -u "${top_srcdir:-.}/demo/$name.expected" "$out"
