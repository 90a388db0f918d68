#!/bin/sh
# make install into a temporary prefix, then build programs outside the
# tree with `pkg-config libgreen-patch` and check that their plain usleep
# calls cooperate: one after green_patch_all(), one that calls no
# libgreen-patch function and relies on GREEN_PATCH_ALL=1 (linked with
# --as-needed, as Debian's gcc does by default: the .pc must keep the
# library anyway).
set -e
if ldd "${top_builddir:-.}/lib/.libs/libgreen.so" 2>/dev/null |
        grep -q 'lib[at]san'; then
    echo "SKIP: a sanitizer build needs its runtime in the program"
    exit 77
fi
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
${MAKE:-make} -s install DESTDIR="$stage" >/dev/null 2>&1
prefix="$stage$(sed -n 's/^prefix=//p' "${top_builddir:-.}/libgreen.pc")"
cat > "$prefix/app.c" <<'APP'
#include <green.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
static void *f(void *arg) { return usleep(200000) == 0 ? NULL : arg; }
int main(void) {
    if (green_patch_all() != 0 || !green_patch_active()) return 1;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    green_t *g[3];
    for (int i = 0; i < 3; i++) g[i] = green_spawn(f, (void *)"bad");
    if (green_joinall(g, 3, -1) != 0) return 1;
    for (int i = 0; i < 3; i++) {
        if (green_value(g[i])) return 1;
        green_release(g[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double t = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
    printf("%s\n", t < 0.5 ? "ok" : "slow");
    return 0;
}
APP
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# --define-prefix: the .pc files say configure's prefix, not this one.
flags=$(pkg-config --define-prefix --cflags --libs libgreen-patch)
echo "pkg-config libgreen-patch: $flags"
cc -o "$prefix/app" "$prefix/app.c" $flags
test "$(LD_LIBRARY_PATH="$prefix/lib" "$prefix/app")" = ok

# The environment-only program: no green_patch_* call, and no direct
# call of an interposed function either (it reaches usleep the way a
# library such as hiredis reaches read: through the global lookup), so
# nothing but the .pc keeps libgreen-patch in it under --as-needed.
cat > "$prefix/envapp.c" <<'APP'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <green.h>
#include <stdio.h>
#include <time.h>
static int (*us)(unsigned);
static void *f(void *arg) { return us(200000) == 0 ? NULL : arg; }
int main(void) {
    us = (int (*)(unsigned))dlsym(RTLD_DEFAULT, "usleep");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    green_t *g[3];
    for (int i = 0; i < 3; i++) g[i] = green_spawn(f, (void *)"bad");
    if (!us || green_joinall(g, 3, -1) != 0) return 1;
    for (int i = 0; i < 3; i++) {
        if (green_value(g[i])) return 1;
        green_release(g[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double t = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
    printf("%s\n", t < 0.5 ? "ok" : "slow");
    return 0;
}
APP
cc -o "$prefix/envapp" "$prefix/envapp.c" -Wl,--as-needed $flags -ldl
out=$(GREEN_PATCH_ALL=1 LD_LIBRARY_PATH="$prefix/lib" "$prefix/envapp")
test "$out" = ok || { echo "GREEN_PATCH_ALL=1 program: $out"; exit 1; }
echo "installed libgreen-patch: pkg-config build OK"
