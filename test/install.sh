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

# libgreen-tls, when it was built: a TLS client refusing a peer that
# does not speak TLS.
if test -f "$prefix/lib/pkgconfig/libgreen-tls.pc"; then
    cat > "$prefix/tls.c" <<'APP'
#include <green.h>
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
int main(void) {
    int sv[2];
    green_tls_ctx_t *ctx = green_tls_client_ctx();
    if (!ctx || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
    if (green_write_all(sv[1], "not TLS\r\n\r\n", 11) != 11) return 1;
    green_tls_t *t = green_tls_connect(ctx, sv[0], "localhost", 5);
    if (t || errno != EPROTO) return 1;
    green_tls_ctx_free(ctx);
    puts("ok");
    return 0;
}
APP
    cc -o "$prefix/tls" "$prefix/tls.c" \
        $(pkg-config --define-prefix --cflags --libs libgreen-tls)
    test "$(LD_LIBRARY_PATH="$prefix/lib" "$prefix/tls")" = ok
    echo "installed libgreen-tls: pkg-config build OK"
fi
