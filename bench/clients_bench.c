/* Unmodified client libraries, unpatched vs patched: N greenlets each
   run a 1 s server-side wait (libpq pg_sleep(1), MariaDB SLEEP(1), a
   libcurl GET the server answers after 1 s).  Unpatched, each call
   blocks the thread and the greenlets serialize (~N s); after
   green_patch_all() they overlap (~1 s).  Also the start-up cost of each
   server (test/servers.h).  A client whose server is missing is left
   out.  One "name value unit" line per figure, like the other benches.
   Takes about 3 x (N + 1) s. */
#include <pthread.h>

#include "clients.h"

#define N 8

static void print_figure(const char *name, const char *phase, double el)
{
    if (el < 0) {
        fprintf(stderr, "clients_bench: %s %s failed\n", name, phase);
        exit(EXIT_FAILURE);
    }
    printf("clients_%s_%s_%dx1s %.3f s\n", name, phase, N, el);
}

/* Runs the unit N times at once, with the same argument. */
static void run(const char *name, const char *phase, green_fn unit,
                void *arg)
{
    print_figure(name, phase, test_run_n(unit, arg, N, 4 * N));
}

#ifdef GREEN_WITH_LIBCURL
/* The HTTP server runs in a thread of its own (its own hub): unpatched
   curl blocks the main thread, where a server could never answer. */
static int port_pipe[2];

static void *http_thread(void *arg)
{
    (void)arg;
    green_server_t *s =
        green_server_new("127.0.0.1:0", test_http_handler, NULL);
    int port = s && green_server_start(s) == 0 ? green_server_port(s) : -1;
    if (write(port_pipe[1], &port, sizeof port) != sizeof port || port < 0)
        return NULL;
    green_server_serve_forever(s); /* until the process exits */
    return NULL;
}

static char *http_start(void)
{
    static char base[64];
    pthread_t t;
    int port = -1;
    if (pipe(port_pipe) != 0 ||
        pthread_create(&t, NULL, http_thread, NULL) != 0 ||
        read(port_pipe[0], &port, sizeof port) != sizeof port || port < 0)
        return NULL;
    pthread_detach(t);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    return base;
}
#endif

/* Start a server and print how long that took; 1 if it runs. */
static int start(const char *name, struct test_server *s,
                 int (*start_fn)(struct test_server *))
{
    double t0 = test_now();
    int rc = start_fn(s);
    if (rc == TEST_SKIP) {
        fprintf(stderr, "clients_bench: no %s server: left out\n", name);
        return 0;
    }
    if (rc != 0)
        exit(EXIT_FAILURE);
    printf("clients_%s_server_start %.3f s\n", name, test_now() - t0);
    return 1;
}

static struct test_server pg, db;

int main(void)
{
    int have_pg = 0, have_db = 0;
    char *http = NULL;
#ifdef GREEN_WITH_LIBPQ
    have_pg = start("pq", &pg, test_pg_start);
#endif
#ifdef GREEN_WITH_LIBMARIADB
    have_db = start("mariadb", &db, test_mariadb_start);
#endif
#ifdef GREEN_WITH_LIBCURL
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!(http = http_start()))
        return EXIT_FAILURE;
#endif
    for (int patched = 0; patched < 2; patched++) {
        const char *phase = patched ? "patched" : "unpatched";
        if (patched && green_patch_all() != 0)
            return EXIT_FAILURE;
#ifdef GREEN_WITH_LIBPQ
        if (have_pg)
            run("pq", phase, test_pq_sleep_one_second, &pg);
#endif
#ifdef GREEN_WITH_LIBMARIADB
        if (have_db)
            run("mariadb", phase, test_mariadb_sleep_one_second, &db);
#endif
#ifdef GREEN_WITH_LIBCURL
        run("curl", phase, test_curl_get_one_second, http);
#endif
    }
    (void)have_pg, (void)have_db, (void)http;
    green_shutdown();
    return EXIT_SUCCESS;
}
