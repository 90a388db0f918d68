#!/bin/sh
# demo/redis_concurrent against a redis-server this test starts itself on
# a free loopback port, and stops by PID at the end (also on failure).
# Skipped (77) where redis-server or hiredis is not installed.
demo="${top_builddir:-.}/demo/redis_concurrent"
server=${REDIS_SERVER:-$(command -v redis-server 2>/dev/null)}
if test -z "$server" || test ! -x "$server"; then
    echo "SKIP: redis-server not found"; exit 77
fi
if test ! -x "$demo"; then
    echo "SKIP: built without hiredis"; exit 77
fi

dir=$(mktemp -d)
pid=
cleanup() {
    if test -n "$pid"; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# A random port; if it is taken our server exits at once and the one
# that answers is not ours (its process id differs): try another.
tries=0
while :; do
    tries=$((tries + 1))
    if test $tries -gt 10; then
        echo "could not start redis-server"; cat "$dir/redis.log"; exit 1
    fi
    port=$(( $(od -An -N2 -tu2 /dev/urandom) % 20000 + 30000 ))
    "$server" --save '' --appendonly no --port "$port" --bind 127.0.0.1 \
        --dir "$dir" --logfile "$dir/redis.log" --daemonize no &
    pid=$!
    answer=$("$demo" -p "$port" --ping)
    if test "$answer" = "$pid"; then
        break
    fi
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
done
echo "redis-server pid $pid on 127.0.0.1:$port"

out=$("$demo" -p "$port" -u 3) || { echo "$out"; exit 1; }
echo "$out"
secs() { echo "$out" | sed -n "s/^$1.*: \([0-9.]*\) s.*/\1/p"; }
unpatched=$(secs 'unpatched: 3 greenlets x BLPOP')
patched=$(secs 'patched: 10 greenlets x BLPOP')
test -n "$unpatched" && test -n "$patched" || exit 1
echo "$out" | grep -q '^patched: 50 greenlets x 1000 SET/GET pairs' || exit 1
# Unpatched, each BLPOP blocks the thread: at least 3 x 1 s.  Patched,
# the 10 BLPOPs overlap: about 1 s (redis checks timeouts every 100 ms),
# far from the 10 s they would take in turn.
awk -v u="$unpatched" -v p="$patched" 'BEGIN {
    if (u < 2.9) { print "unpatched BLPOP phase too short: " u; exit 1 }
    if (p < 0.95 || p > 3) { print "patched BLPOP phase out of bounds: " p; exit 1 }
}'
