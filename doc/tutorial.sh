#!/bin/sh
# tutorial.sh check|update TUTORIAL [SRCDIR [BUILDDIR]]
#
# doc/tutorial.md shows code from the demos, never copies of it.  Each
# block is announced by a comment naming its source,
#     <!-- code: demo/events.c event -->     the region "event" of the file
#     <!-- code: demo/echo_server.c -->      the whole file
# and the ```c block right after it is that code, byte for byte.  A
# region is the lines between "/* tutorial:begin NAME */" and the next
# "/* tutorial:end */" in the file.
#
# check: every block matches its source; every file the tutorial names
#   (demo/..., test/..., doc/...) exists; every demo it names is a
#   program that make check builds (it exists in BUILDDIR after the
#   build); every region marked in a demo appears in the tutorial.
# update: rewrite the blocks of TUTORIAL from their sources.
# POSIX sh and awk.
set -e
mode=$1
tut=$2
src=${3:-.}
build=${4:-.}
if test $# -lt 2 || { test "$mode" != check && test "$mode" != update; }; then
    echo "usage: $0 check|update TUTORIAL [SRCDIR [BUILDDIR]]" >&2
    exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# region FILE [NAME]: print the region (or the whole file).
region() {
    if test -z "$2"; then
        cat "$1"
        return
    fi
    awk -v name="$2" '
        $0 ~ "^[ \t]*/\\* tutorial:end \\*/[ \t]*$" { if (on) exit; next }
        on { print }
        $0 ~ "^[ \t]*/\\* tutorial:begin " name " \\*/[ \t]*$" { on = 1; found = 1 }
        END { if (!found) exit 3 }
    ' "$1"
}

# The blocks: one "FILE NAME" line each, in order.
sed -n 's/^<!-- code: \([^ ]*\) *\([^ ]*\) *-->$/\1 \2/p' "$tut" > "$tmp/blocks"
fail=0
n=0
while read -r file name; do
    n=$((n + 1))
    if ! test -f "$src/$file"; then
        echo "FAIL: block $n: no file $file"
        fail=1
        continue
    fi
    if ! region "$src/$file" "$name" > "$tmp/want.$n"; then
        echo "FAIL: block $n: no region '$name' in $file"
        fail=1
    fi
done < "$tmp/blocks"
test $fail = 0 || exit 1

if test "$mode" = update; then
    # Replace each announced block with its source.
    awk -v tmp="$tmp" '
        /^<!-- code: / { print; n++; want = 1; next }
        want && /^```c$/ {
            print
            f = tmp "/want." n
            while ((getline l < f) > 0) print l
            close(f)
            skip = 1; want = 0; next
        }
        skip && /^```$/ { skip = 0; print; next }
        skip { next }
        { want = 0; print }
    ' "$tut" > "$tmp/new"
    cat "$tmp/new" > "$tut"
    echo "updated $n blocks"
    exit 0
fi

# check: each block, as written in the tutorial, against its source.
awk -v tmp="$tmp" '
    /^<!-- code: / { n++; want = 1; next }
    want && /^```c$/ { f = tmp "/got." n; printf "" > f; on = 1; want = 0; next }
    on && /^```$/ { on = 0; close(f); next }
    on { print > f; next }
    { want = 0 }
' "$tut"
i=1
while test $i -le $n; do
    file=$(sed -n "${i}p" "$tmp/blocks")
    if ! test -f "$tmp/got.$i"; then
        echo "FAIL: block $i ($file): no \`\`\`c block after its comment"
        fail=1
    elif ! diff -u "$tmp/want.$i" "$tmp/got.$i" > "$tmp/diff"; then
        echo "FAIL: block $i differs from $file (run: sh doc/tutorial.sh update $tut):"
        cat "$tmp/diff"
        fail=1
    fi
    i=$((i + 1))
done

# Every file the tutorial names exists; every demo is built.
for f in $(grep -o '\(demo\|test\|doc\|include\|lib\)/[A-Za-z0-9_./-]*[A-Za-z0-9_]' "$tut" | sort -u); do
    if ! test -e "$src/$f"; then
        # "demo/echo_server" names the program built from demo/echo_server.c
        if ! test -f "$src/$f.c"; then
            echo "FAIL: the tutorial names $f, which does not exist"
            fail=1
            continue
        fi
    fi
    case $f in
    demo/*.c | demo/*)
        prog=${f%.c}
        case $prog in *.h | *.expected) continue ;; esac
        test -f "$src/$prog.c" || continue
        # The one demo that needs hiredis is built only when it is there.
        if test "$prog" = demo/redis_concurrent &&
                ! grep -q '^HIREDIS_LIBS = .' "$build/Makefile" 2>/dev/null; then
            continue
        fi
        if ! test -x "$build/$prog"; then
            echo "FAIL: $prog (named by the tutorial) is not built by make check"
            fail=1
        fi
        ;;
    esac
done

# Every region marked in a demo is shown.
for f in "$src"/demo/*.c; do
    for r in $(sed -n 's|^[ \t]*/\* tutorial:begin \([^ ]*\) \*/.*|\1|p' "$f"); do
        rel=demo/$(basename "$f")
        if ! grep -q "^<!-- code: $rel $r -->$" "$tut"; then
            echo "FAIL: region $r of $rel is not in the tutorial"
            fail=1
        fi
    done
done
test $fail = 0
echo "tutorial: $n code blocks match their demos"
