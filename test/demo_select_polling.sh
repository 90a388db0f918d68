#!/bin/sh
# Two greenlets poll with select(0, NULL, NULL, NULL, 2 s) while a third
# sleeps 1 s: the lines come in the tutorial's order and the whole run
# takes about 2 s (the waits overlap), not 5 s.
set -e
start=$(date +%s.%N)
out=$("${top_builddir:-.}/demo/select_polling")
end=$(date +%s.%N)
echo "$out"
echo "$out" | awk '
    NR <= 2 && !/^Started Polling: at 0\.[0-9] seconds$/ { exit 1 }
    NR == 3 && !/^Hey lets do some stuff while the greenlets poll, at 0\.[0-9] seconds$/ { exit 1 }
    NR >= 4 && !/^Ended Polling: at [23]\.[0-9] seconds$/ { exit 1 }
    END { exit NR != 5 }'
awk -v s="$start" -v e="$end" 'BEGIN { d = e - s; exit !(d >= 1.99 && d < 4) }'
