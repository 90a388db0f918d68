/* One hub per core: N threads, each with its own hub and its own
   listening socket on the same port (SO_REUSEPORT: the kernel spreads the
   connections over the sockets), each serving HTTP/1.1 keep-alive with
   one greenlet per connection.  Greenlets never leave their thread, so
   the threads share nothing but the port.

   Usage: multicore_http PORT [THREADS]  (PORT 0 picks a free port;
   THREADS defaults to the number of online CPUs).  Prints
   "listening on 127.0.0.1:PORT" and "threads N", then serves until
   SIGTERM/SIGINT, when it prints one line per thread
   ("thread I: connections C requests R") and exits.  Every request gets
   the same small 200 response (demo/http_common.h, shared with
   demo/http_hello), so it is usable with wrk. */
#include <arpa/inet.h>
#include <errno.h>
#include <green.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_common.h"

#define MAX_THREADS 256

/* One serving thread. */
struct server {
    int index;
    int lfd;                    /* its own SO_REUSEPORT listener */
    int port;
    pthread_t tid;
    atomic_ulong connections;   /* read by main at exit */
    atomic_ulong requests;
};

/* One connection, in its thread's hub. */
struct conn {
    struct server *srv;
    int fd;
};

static void *serve_conn(void *arg)
{
    struct conn c = *(struct conn *)arg;
    free(arg);
    char buf[8192], out[16 * HTTP_RESPONSE_LEN];
    size_t len = 0;
    int close = 0, drained = 0;
    for (;;) {
        /* After a short read the socket is drained: wait for the next
           request instead of paying for a read that returns EAGAIN. */
        if (drained && green_wait_read(c.fd, -1) != 0)
            break;
        ssize_t n = green_read(c.fd, buf + len, sizeof buf - len);
        if (n <= 0)
            break;
        drained = (size_t)n < sizeof buf - len;
        len += (size_t)n;
        for (;;) {
            size_t used = http_consume(buf, &len, out, sizeof out, &close);
            if (used) {
                atomic_fetch_add_explicit(&c.srv->requests,
                                          used / HTTP_RESPONSE_LEN,
                                          memory_order_relaxed);
                if (green_write_all(c.fd, out, used) < 0)
                    goto done;
            }
            if (!used || close)
                break;
        }
        if (close || len == sizeof buf)
            break; /* asked to, or a request head too large */
    }
done:
    green_close(c.fd);
    return NULL;
}

/* The accept loop: one greenlet per thread. */
static void *acceptor(void *arg)
{
    struct server *srv = arg;
    for (;;) {
        int fd = green_accept(srv->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == ECANCELED || errno == EBADF)
                return NULL;
            green_sleep(0.01); /* EMFILE and friends: back off */
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = malloc(sizeof *c);
        green_t *g = c ? green_spawn(serve_conn, c) : NULL;
        if (!g) {
            free(c);
            close(fd);
            continue;
        }
        c->srv = srv;
        c->fd = fd;
        green_release(g);
        atomic_fetch_add_explicit(&srv->connections, 1, memory_order_relaxed);
    }
}

/* A serving thread: its own hub (created on first use), the acceptor,
   and the hub's loop until the process ends. */
static void *server_thread(void *arg)
{
    struct server *srv = arg;
    green_t *a = green_spawn(acceptor, srv);
    if (!a) {
        perror("green_spawn");
        exit(1);
    }
    green_release(a);
    green_run();
    return NULL;
}

static int listen_reuseport(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        close(fd);
        return -1;
    }
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        listen(fd, 1024) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static struct server servers[MAX_THREADS];

static int nservers;

/* Waits for one stop signal; the first to arrive prints the figures and
   ends the process (the other threads' hubs are still serving). */
static void *stop_on(void *arg)
{
    if (green_signal_wait((int)(intptr_t)arg, -1) != 0)
        return NULL;
    for (int i = 0; i < nservers; i++)
        printf("thread %d: connections %lu requests %lu\n", i,
               atomic_load(&servers[i].connections),
               atomic_load(&servers[i].requests));
    fflush(stdout);
    _exit(0);
}

/* Runs after the signal waiters parked (FIFO), so that a stop signal
   sent once this line is out is always caught. */
static void *announce(void *arg)
{
    (void)arg;
    printf("listening on 127.0.0.1:%d\nthreads %d\n", servers[0].port,
           nservers);
    fflush(stdout);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PORT [THREADS]\n", argv[0]);
        return 2;
    }
    long n = argc == 3 ? atol(argv[2]) : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > MAX_THREADS)
        n = MAX_THREADS;
    http_raise_nofile();
    /* The first socket picks the port (if 0); the others join it. */
    int port = atoi(argv[1]);
    for (long i = 0; i < n; i++) {
        servers[i].index = (int)i;
        servers[i].lfd = listen_reuseport(port);
        if (servers[i].lfd < 0) {
            perror("listen (SO_REUSEPORT)");
            return 1;
        }
        if (i == 0) {
            struct sockaddr_in sin;
            socklen_t len = sizeof sin;
            getsockname(servers[0].lfd, (struct sockaddr *)&sin, &len);
            port = ntohs(sin.sin_port);
        }
    }
    /* Threads 1..n-1 get hubs of their own; the main thread serves as
       thread 0 and also waits for the stop signal. */
    for (long i = 1; i < n; i++)
        if (pthread_create(&servers[i].tid, NULL, server_thread,
                           &servers[i]) != 0) {
            perror("pthread_create");
            return 1;
        }
    nservers = (int)n;
    servers[0].port = port;
    green_t *g[3] = {green_spawn(stop_on, (void *)(intptr_t)SIGTERM),
                     green_spawn(stop_on, (void *)(intptr_t)SIGINT),
                     green_spawn(announce, NULL)};
    for (int i = 0; i < 3; i++) {
        if (!g[i]) {
            perror("green_spawn");
            return 1;
        }
        green_release(g[i]);
    }
    server_thread(&servers[0]);
    return 0;
}
