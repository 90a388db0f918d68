/* Unmodified blocking TLS clients, unpatched vs patched: N greenlets
   each run one raw OpenSSL GET (test/tlsclients.h), then N run one
   libcurl GET, against a green_tls_server_new server in a child process
   whose handler sleeps DELAY before answering.  Unpatched, each client
   blocks the thread: about N * DELAY.  After green_patch_all() the same
   code waits cooperatively: about DELAY.  Prints "name seconds s" lines
   (part of make bench-https). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test/tlstest.h"
#include "../test/tlsclients.h"

#define N 8

static double delay = 0.25;
static struct tls_target target;

/* The server, in a child: writes its port to fd out, serves until
   killed. */
static void serve(const struct tls_files *f, int out)
{
    green_tls_ctx_t *ctx = green_tls_server_ctx(f->cert, f->key);
    green_server_t *s =
        ctx ? green_tls_server_new("127.0.0.1:0", ctx, slow_hello, &delay)
            : NULL;
    int p = s ? green_server_port(s) : -1;
    if (write(out, &p, sizeof p) != sizeof p || !s)
        _exit(1);
    green_server_serve_forever(s);
    _exit(0);
}

static void report(const char *mode)
{
    printf("tls_clients_openssl_x%d_%s %.3f s\n", N, mode,
           test_run_n(tls_openssl_unit, &target, N, 120));
#ifdef HAVE_LIBCURL
    printf("tls_clients_curl_x%d_%s %.3f s\n", N, mode,
           test_run_n(tls_curl_unit, &target, N, 120));
#endif
}

int main(void)
{
    const struct tls_files *f = tls_make_files();
    int pfd[2];
    if (pipe(pfd) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0)
        serve(f, pfd[1]);
    if (pid < 0 ||
        read(pfd[0], &target.port, sizeof target.port) != sizeof target.port ||
        target.port < 0)
        return 1;
    close(pfd[0]);
    close(pfd[1]);
    target.ctx = openssl_client_ctx(f->ca);
    target.ca = f->ca;
#ifdef HAVE_LIBCURL
    curl_global_init(CURL_GLOBAL_DEFAULT);
#endif
    printf("tls_clients_delay %.3f s\n", delay);
    report("unpatched");
    green_patch_all();
    report("patched");
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    SSL_CTX_free(target.ctx);
#ifdef HAVE_LIBCURL
    curl_global_cleanup();
#endif
    return 0;
}
