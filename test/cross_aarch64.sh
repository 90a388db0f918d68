#!/bin/sh
# Cross-build libgreen for aarch64 with the asm context switch
# (lib/core/context_aarch64.S) and run, under qemu-aarch64-static, the
# backend-alone selftest and the Check suites of the core, sync and I/O
# layers.  Needs (Debian multiarch, see .ci/run):
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install gcc-aarch64-linux-gnu qemu-user-static \
#       libev-dev:arm64 check:arm64
# Optional libraries not installed for arm64 are simply not found.
# Without the arm64 libev and Check (or with --deps-from-source), their
# upstream sources (from Debian's source packages: apt-get source with a
# private deb-src list, no change to the system's apt) are cross-built
# into the temp dir first:
# then only gcc-aarch64-linux-gnu and qemu-user-static are
# needed.  Nothing of them is kept.
# GREEN_TEST_QEMU=1 makes the suites skip the few tests qemu-user cannot
# run (see test_qemu() in test/testutil.h); GREEN_TEST_SLACK=5 stretches
# their "not late" time bounds (emulation is slower) and, unlike
# GREEN_TEST_SLOW, keeps the RSS bounds (they hold under qemu-user).
# Run from anywhere: sh test/cross_aarch64.sh   (exit 0: all passed)
# Only the selftest (no arm64 libev/Check needed): sh test/cross_aarch64.sh --selftest
set -e
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d)
# CROSS_KEEP=1 keeps the temp dir (its path is printed) for a look.
if [ -n "$CROSS_KEEP" ]; then echo "cross_aarch64: in $out"; else trap 'rm -rf "$out"' EXIT; fi
host=aarch64-linux-gnu
qemu=qemu-aarch64-static

# 1. The asm backend alone (test/ctx_selftest.c), static.
# The selftest needs only this from config.h.
echo '#define GREEN_CONTEXT_ASM 1' >"$out/config.h"
$host-gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror \
    -Wstrict-prototypes -Wmissing-prototypes -static \
    -I"$out" -I"$src/lib/core" \
    "$src/test/ctx_selftest.c" "$src/lib/core/context_asm.c" \
    "$src/lib/core/context.c" \
    "$src/lib/core/context_aarch64.S" -lm -o "$out/ctx_selftest"
$qemu "$out/ctx_selftest"
[ "$1" = --selftest ] && exit 0

# 2. libgreen and the suites, in a vpath build.  --disable-shared: the
# test programs are plain executables (no libtool wrapper scripts) that
# qemu runs directly; libev, Check and libc come from the arm64
# multiarch directories (/usr/lib/aarch64-linux-gnu), which the arm64
# dynamic loader searches.
[ -f "$src/configure" ] || (cd "$src" && ./bootstrap)
core="check_greenlet check_hub check_stack check_timeout check_cancel check_local"
sync="check_sync check_queue check_pool check_waitany"
io="check_io check_poll check_net check_server"
PKG_CONFIG_LIBDIR=/usr/lib/$host/pkgconfig:/usr/share/pkgconfig
dep_flags=
if [ "$1" = --deps-from-source ] ||
    ! [ -f /usr/lib/$host/libev.so ] || ! [ -f /usr/lib/$host/pkgconfig/check.pc ]; then
    # libev and Check from Debian's source packages, cross-built static.
    echo "cross_aarch64: building libev and Check for $host from source"
    d=$out/deps
    mkdir -p "$d/parts" "$d/lists/partial" "$d/cache/archives/partial" \
        "$d/build" "$d/prefix"
    . /etc/os-release
    printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' \
        "Suites: $VERSION_CODENAME" 'Components: main' \
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
        >"$d/parts/src.sources"
    apt="apt-get -q -o Dir::Etc::SourceList=/dev/null
        -o Dir::Etc::SourceParts=$d/parts -o Dir::State::Lists=$d/lists
        -o Dir::Cache=$d/cache -o APT::Sandbox::User=root"
    # The upstream tarballs (*.orig.tar.gz, checked by apt against the
    # signed index), without Debian's patches: Debian's check.pc names
    # its libcheck_pic.
    (cd "$d/build" && $apt update && $apt source --download-only libev check &&
        for f in libev_*.orig.tar.gz check_*.orig.tar.gz; do
            tar xzf "$f" || exit 1
        done) >"$d/apt.out" 2>&1 || { cat "$d/apt.out"; exit 1; }
    (cd "$d/build"/libev-[0-9]* &&
        ./configure --host=$host --prefix="$d/prefix" --disable-shared &&
        make -j"${JOBS:-2}" && make install) >"$d/libev.out" 2>&1 ||
        { cat "$d/libev.out"; exit 1; }
    # Check: only its library, header and check.pc.
    (cd "$d/build"/check-[0-9]* &&
        ./configure --host=$host --prefix="$d/prefix" --disable-shared \
            --disable-subunit --disable-build-docs &&
        make -j"${JOBS:-2}" -C lib && make -j"${JOBS:-2}" -C src &&
        make -C lib install && make -C src install &&
        make install-pcdataDATA) >"$d/check.out" 2>&1 ||
        { cat "$d/check.out"; exit 1; }
    PKG_CONFIG_LIBDIR=$d/prefix/lib/pkgconfig
    # -isystem: like the multiarch headers, ev.h is a system header
    # (its macros trip -Wstrict-aliasing otherwise).
    dep_flags="CPPFLAGS=-isystem$d/prefix/include LDFLAGS=-L$d/prefix/lib"
    # No arm64 libc through multiarch either, maybe: the cross
    # toolchain's (libc6-arm64-cross) then.
    [ -e /lib/ld-linux-aarch64.so.1 ] || {
        QEMU_LD_PREFIX=/usr/$host
        export QEMU_LD_PREFIX
    }
fi
# The build machine's pkg-config, on the target's .pc files only.
PKG_CONFIG=pkg-config
export PKG_CONFIG PKG_CONFIG_LIBDIR
mkdir "$out/b"
cd "$out/b"
"$src/configure" --host=$host --with-context=asm --enable-werror \
    --disable-shared --without-openssl --without-liburing $dep_flags \
    >configure.out || { cat configure.out config.log; exit 1; }
targets=
for t in $core $sync $io; do targets="$targets test/$t"; done
make -j"${JOBS:-2}" $targets >make.out 2>&1 || { cat make.out; exit 1; }

GREEN_TEST_QEMU=1 GREEN_TEST_SLACK=${GREEN_TEST_SLACK:-5} CK_DEFAULT_TIMEOUT=120
export GREEN_TEST_QEMU GREEN_TEST_SLACK CK_DEFAULT_TIMEOUT
top_builddir=. top_srcdir=$src
export top_builddir top_srcdir
failed=
for t in $core $sync $io; do
    echo "=== $t (aarch64, qemu)"
    if ! $qemu "test/$t"; then
        failed="$failed $t"
    fi
done
if [ -n "$failed" ]; then
    echo "cross_aarch64: FAILED:$failed"
    exit 1
fi
echo "cross_aarch64: all suites passed"
