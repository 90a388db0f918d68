/* Stack overflow reports.  A greenlet that runs off its stack hits the
   guard page; this SIGSEGV handler (on an alternate signal stack, since
   the faulting stack is unusable) names the greenlet, then puts the
   previous handler back and returns, so the fault repeats and the
   previous action (the default: death by SIGSEGV) applies.  Any other
   fault goes to the previous action untouched.  Async-signal-safe only:
   write, sigaction, raise. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hub.h"

#define ALTSTACK_SIZE (64 * 1024)

static struct sigaction previous;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static __thread void *altstack_map; /* ours to free, NULL if not ours */

static size_t fmt_u64(char *buf, uint64_t v)
{
    char tmp[24];
    size_t n = 0, i = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        buf[i++] = tmp[--n];
    return i;
}

static size_t append(char *buf, size_t at, const char *s)
{
    size_t n = strlen(s);
    memcpy(buf + at, s, n);
    return at + n;
}

static void report_overflow(const struct green *g)
{
    char msg[160];
    size_t n = append(msg, 0, "libgreen: stack overflow in greenlet '");
    if (g->name[0]) {
        n = append(msg, n, g->name);
    } else {
        n = append(msg, n, "greenlet-");
        n += fmt_u64(msg + n, g->id);
    }
    n = append(msg, n, "' (id ");
    n += fmt_u64(msg + n, g->id);
    n = append(msg, n, ", stack ");
    n += fmt_u64(msg + n, green__stack_size(&g->stack));
    n = append(msg, n, " bytes)\n");
    /* The raw syscall: libgreen-patch may interpose write(). */
    long r = syscall(SYS_write, STDERR_FILENO, msg, n);
    (void)r;
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    struct green__hub *hub = green__hub_peek();
    if (hub && hub->current &&
        green__stack_in_guard(&hub->current->stack, si->si_addr))
        report_overflow(hub->current);
    /* Hand the signal to whoever had it before us. */
    sigaction(SIGSEGV, &previous, NULL);
    if (si->si_code <= 0) {
        /* Sent with kill/raise, not a fault: re-send it (it is delivered
           to the previous action when this handler returns). */
        raise(sig);
    } else if (previous.sa_flags & SA_SIGINFO) {
        /* Called directly: we are on the alternate stack, and the
           faulting stack may have no room for another signal frame. */
        if (previous.sa_sigaction)
            previous.sa_sigaction(sig, si, uc);
    } else if (previous.sa_handler != SIG_DFL &&
               previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
    }
    /* A fault returns to the faulting instruction, which faults again
       into the previous action. */
    errno = saved;
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous);
}

void green__segv_init(void)
{
    pthread_once(&install_once, install);
    /* The handler needs a stack that is not the overflowed one.  Keep
       the application's altstack if it has one. */
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
        return;
    void *map = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        return;
    stack_t ss = {.ss_sp = map, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(map, ALTSTACK_SIZE);
        return;
    }
    altstack_map = map;
}

void green__segv_thread_term(void)
{
    if (!altstack_map)
        return;
    stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(altstack_map, ALTSTACK_SIZE);
    altstack_map = NULL;
}
