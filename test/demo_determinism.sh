#!/bin/sh
# Four imap_unordered runs over a pool of 10 give the same order: "true".
set -e
out=$("${top_builddir:-.}/demo/determinism")
echo "$out"
test "$out" = "true"
