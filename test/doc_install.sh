#!/bin/sh
# The installed documentation and debugger support (staged, DESTDIR):
# `man 3 green_spawn`, a family member's page (green_queue_get, a .so
# link), `man 7 libgreen`; and the gdb extension under the real name of
# the installed libgreen.so, in gdb's auto-load tree.  Installs only the
# data that make install adds for them (install-data-local), so it does
# not race the other install tests.
set -e
top=${top_builddir:-.}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
${MAKE:-make} -s -C "$top" install-data-local DESTDIR="$stage" >/dev/null
mandir=$stage${GREEN_MANDIR:?}
fail=0
for p in man3/green_spawn.3 man3/green_queue_get.3 man7/libgreen.7; do
    test -f "$mandir/$p" || { echo "FAIL: $mandir/$p not installed"; fail=1; }
done
if command -v man >/dev/null 2>&1; then
    for q in "3 green_spawn:^GREEN_SPAWN\(3\).*|^ +green_spawn +- +Create" \
             "3 green_queue_get:^ +green_queue_new, +green_queue_put, +green_queue_get" \
             "7 libgreen:^ +libgreen +- +gevent"; do
        args=${q%%:*}
        want=${q#*:}
        # shellcheck disable=SC2086
        text=$(MANPATH="$mandir" MANWIDTH=80 man -P cat $args 2>&1 || true)
        if ! printf '%s\n' "$text" | grep -Eq "$want"; then
            echo "FAIL: man $args does not show '$want':"
            printf '%s\n' "$text" | head -20
            fail=1
        fi
    done
    echo "man 3 green_spawn, man 3 green_queue_get, man 7 libgreen: OK"
else
    echo "note: no man(1) here, checked the installed files only"
fi
# libtool's real name of the library (libgreen.so.0.0.0), from the .la.
real=$(. "$top/lib/libgreen.la"; set -- $library_names; echo "$1")
if test -n "$real"; then
    script="$stage${GREEN_GDBDIR:?}/$real-gdb.py"
    if ! cmp -s "$script" "${top_srcdir:-.}/lib/diag/libgreen-gdb.py"; then
        echo "FAIL: the gdb extension is not at $script"
        find "$stage" -name '*-gdb.py'
        fail=1
    else
        echo "gdb extension: ${script#$stage}"
    fi
fi
test $fail = 0
