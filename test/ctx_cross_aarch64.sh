#!/bin/sh
# Cross-build the asm context backend for aarch64 (context_asm.c,
# context_aarch64.S) with test/ctx_selftest.c, and run it under qemu.
# Needs: apt-get install gcc-aarch64-linux-gnu qemu-user-static
# Run from anywhere: sh test/ctx_cross_aarch64.sh   (exit 0: passed)
set -e
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The selftest needs only this from config.h.
echo '#define GREEN_CONTEXT_ASM 1' >"$out/config.h"
aarch64-linux-gnu-gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror \
    -Wstrict-prototypes -Wmissing-prototypes -static \
    -I"$out" -I"$src/lib/core" \
    "$src/test/ctx_selftest.c" "$src/lib/core/context_asm.c" \
    "$src/lib/core/context.c" \
    "$src/lib/core/context_aarch64.S" -lm -o "$out/ctx_selftest"
qemu-aarch64-static "$out/ctx_selftest"
