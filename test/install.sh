#!/bin/sh
# make install into a temporary prefix, then build and run a program
# outside the tree with pkg-config, as a user would.
set -e
# A staged install (DESTDIR), the way packagers install.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
${MAKE:-make} -s install DESTDIR="$stage" >/dev/null
prefix="$stage$(sed -n 's/^prefix=//p' "${top_builddir:-.}/libgreen.pc")"
cat > "$prefix/app.c" <<'APP'
#include <green.h>
#include <stdio.h>
static void *f(void *arg) { green_sleep(0.01); return arg; }
int main(void) {
    green_t *g = green_spawn(f, (void *)"ok");
    if (!g || green_join(g, -1) != 0) return 1;
    puts((const char *)green_value(g));
    green_release(g);
    return 0;
}
APP
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# The .pc files carry the configured prefix: --define-prefix derives it
# from where they were installed instead.
cc -o "$prefix/app" "$prefix/app.c" \
    $(pkg-config --define-prefix --cflags --libs libgreen)
test "$(LD_LIBRARY_PATH="$prefix/lib" "$prefix/app")" = ok
echo "installed libgreen: pkg-config build OK"
