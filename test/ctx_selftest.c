/* The asm context backend alone (context_asm.c with context_x86_64.S
   or context_aarch64.S): no libev, no hub, no Check, so it also runs
   cross-built under qemu.  Main and one context ping-pong many times,
   each keeping many integer and floating-point values live across every
   switch (they sit in callee-saved registers: x19-x28 and d8-d15 on
   aarch64) and each with its own rounding mode (MXCSR/x87 CW, FPCR);
   every checksum must equal the one computed without switching.  Then
   the context finishes through green__ctx_switch_final and a second one
   is made on the same stack.  Exit status 0 on success.

   Native: make check with --with-context=asm runs it.  Cross, for
   aarch64 under qemu-aarch64-static: sh test/cross_aarch64.sh. */
#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "context.h"

#define ROUNDS 200000
#define STACK (256 * 1024)

static struct green__ctx main_ctx, co_ctx;
static long co_sum;
static int co_runs;

static void noop(void)
{
}

static void to_main(void)
{
    green__ctx_switch(&co_ctx, &main_ctx);
}

static void to_co(void)
{
    green__ctx_switch(&main_ctx, &co_ctx);
}

/* A checksum over `rounds` iterations with ten integers and eight
   doubles live across every yield().  The doubles' divisions by 3 round
   differently under FE_UPWARD and FE_TONEAREST, so a rounding mode
   leaking from the other context changes the sum. */
__attribute__((noinline)) static long work(long seed, long rounds,
                                           void (*yield)(void))
{
    long a = seed, b = seed * 3, c = seed ^ 0x55, d = seed + 7,
         e = seed * seed, f = ~seed, g = seed << 3, h = seed - 11,
         i2 = seed * 5, j = seed | 0x100;
    double x = (double)seed, y = 1.0, z = 2.0, w = 3.0, p = 0.5,
           q = 0.25, r = 7.0, s = 11.0;
    for (long i = 0; i < rounds; i++) {
        a += i;
        b ^= a;
        c += b >> 3;
        d -= c;
        e += d * 3;
        f ^= e;
        g += f >> 1;
        h += g;
        i2 ^= h;
        j += i2 >> 2;
        x = x / 3.0 + 1.0;
        y = y / 3.0 + x;
        z = z / 3.0 + y;
        w = w / 3.0 + z;
        p = p / 3.0 + w;
        q = q / 3.0 + p;
        r = r / 3.0 + q;
        s = s / 3.0 + r;
        yield();
    }
    union {
        double d;
        long l;
    } u;
    u.d = x + y + z + w + p + q + r + s;
    return a ^ b ^ c ^ d ^ e ^ f ^ g ^ h ^ i2 ^ j ^ u.l;
}

/* The context: rounds up, works with a switch to main per round, then
   leaves for good. */
static void co_entry(void)
{
    green__ctx_entered(&co_ctx);
    co_runs++;
    /* printf with a double: needs a correctly aligned stack. */
    char buf[32];
    snprintf(buf, sizeof buf, "%.1f", 1.5);
    fesetround(FE_UPWARD);
    co_sum = work(7, ROUNDS, to_main);
    if (fegetround() != FE_UPWARD)
        co_sum = 0;
    green__ctx_switch_final(&co_ctx, &main_ctx);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(const char *what)
{
    fprintf(stderr, "ctx_selftest (%s): FAIL: %s\n", green__ctx_backend(),
            what);
    return 1;
}

int main(void)
{
    green__ctx_init_thread(&main_ctx);
    fesetround(FE_UPWARD);
    long ref_co = work(7, ROUNDS, noop);
    fesetround(FE_TONEAREST);
    long ref_main = work(3, ROUNDS, noop);

    char *stack = aligned_alloc(4096, STACK);
    if (!stack)
        return fail("no memory");
    for (int pass = 0; pass < 2; pass++) {
        co_sum = -1;
        green__ctx_make(&co_ctx, stack, STACK, co_entry);
        double t0 = now();
        long got = work(3, ROUNDS, to_co);
        double el = now() - t0;
        /* co is parked in its last yield: let it finish. */
        to_co();
        if (fegetround() != FE_TONEAREST)
            return fail("main's rounding mode changed");
        if (got != ref_main)
            return fail("main's registers were clobbered");
        if (co_sum != ref_co)
            return fail("the context's registers or rounding mode");
        if (co_runs != pass + 1)
            return fail("entry ran a wrong number of times");
        green__ctx_destroy(&co_ctx);
        if (pass == 0)
            printf("ctx_selftest (%s): ok, %d round trips, %.1f ns per "
                   "round trip with the work\n",
                   green__ctx_backend(), ROUNDS, el * 1e9 / ROUNDS);
    }
    free(stack);
    return 0;
}
