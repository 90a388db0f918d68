/* An existing libev daemon that adopts greenlets for its connections.

   Everything here is written the way plain libev daemons are: main()
   owns the loop and calls ev_run; an ev_io watcher accepts connections,
   an ev_timer prints statistics, an ev_signal handles SIGTERM/SIGINT.
   The only libgreen calls in the event-driven part are green_hub_attach
   (once), green_spawn (from the accept callback) and green_shutdown (at
   the end).  Each connection is then served by plain blocking-style code
   (echo: green_read / green_write_all) running as a greenlet inside the
   daemon's own loop.

   Usage: embed_daemon PORT [STATS_INTERVAL]  (PORT 0 picks a free port;
   statistics every STATS_INTERVAL seconds, default 1).  Prints
   "listening on 127.0.0.1:PORT", then "stats: ..." lines; on SIGTERM or
   SIGINT it stops accepting, detaches libgreen (green_shutdown drops
   the connection greenlets and leaves the loop clean, so ev_run
   returns), closes the connections and prints "bye". */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <green.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 1024

/* The daemon's own state, as any libev program keeps it. */
static struct {
    ev_io accept_w;
    ev_timer stats_w;
    ev_signal term_w, int_w;
    unsigned long accepted;
    unsigned long bytes;
    int conns[MAX_CONNS];   /* open connection fds, -1 = free slot */
    int active;
} d;

static int conn_slot_take(int fd)
{
    for (int i = 0; i < MAX_CONNS; i++)
        if (d.conns[i] < 0) {
            d.conns[i] = fd;
            d.active++;
            return i;
        }
    return -1;
}

/* Blocking-style connection code: runs as a greenlet, parks only itself
   while it waits for the peer. */
static void *echo_conn(void *arg)
{
    int slot = (int)(intptr_t)arg;
    int fd = d.conns[slot];
    char buf[4096];
    ssize_t n;
    while ((n = green_read(fd, buf, sizeof buf)) > 0) {
        if (green_write_all(fd, buf, (size_t)n) < 0)
            break;
        d.bytes += (unsigned long)n;
    }
    green_close(fd);
    d.conns[slot] = -1;
    d.active--;
    return NULL;
}

/* Plain libev callback: accept, then hand each connection to a greenlet
   (it starts on the next loop iteration). */
static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN: drained (errors: try again next time) */
        int slot = conn_slot_take(fd);
        green_t *g = slot < 0 ? NULL
                              : green_spawn(echo_conn, (void *)(intptr_t)slot);
        if (!g) {
            if (slot >= 0) {
                d.conns[slot] = -1;
                d.active--;
            }
            close(fd);
            continue;
        }
        green_release(g); /* nobody joins it */
        d.accepted++;
    }
}

static void stats_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    printf("stats: accepted=%lu active=%d bytes=%lu\n", d.accepted, d.active,
           d.bytes);
    fflush(stdout);
}

static void term_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_io_stop(loop, &d.accept_w);
    close(d.accept_w.fd);
    ev_timer_stop(loop, &d.stats_w);
    ev_signal_stop(loop, &d.term_w);
    ev_signal_stop(loop, &d.int_w);
    /* Detach libgreen: its watchers and greenlets go; the loop has nothing
       left, so ev_run returns in main. */
    green_shutdown();
    for (int i = 0; i < MAX_CONNS; i++)
        if (d.conns[i] >= 0)
            close(d.conns[i]);
    printf("stats: accepted=%lu active=%d bytes=%lu (final)\n", d.accepted,
           d.active, d.bytes);
    fflush(stdout);
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        listen(fd, 128) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PORT [STATS_INTERVAL]\n", argv[0]);
        return 2;
    }
    double interval = argc == 3 ? atof(argv[2]) : 1.0;
    if (!(interval > 0))
        interval = 1.0;
    for (int i = 0; i < MAX_CONNS; i++)
        d.conns[i] = -1;

    struct ev_loop *loop = ev_default_loop(0);
    int lfd = listen_on(atoi(argv[1]));
    if (lfd < 0) {
        perror("listen");
        return 1;
    }
    /* The one line that embeds libgreen into the daemon's loop. */
    if (green_hub_attach(loop) != 0) {
        perror("green_hub_attach");
        return 1;
    }
    ev_io_init(&d.accept_w, accept_cb, lfd, EV_READ);
    ev_io_start(loop, &d.accept_w);
    ev_timer_init(&d.stats_w, stats_cb, interval, interval);
    ev_timer_start(loop, &d.stats_w);
    ev_signal_init(&d.term_w, term_cb, SIGTERM);
    ev_signal_start(loop, &d.term_w);
    ev_signal_init(&d.int_w, term_cb, SIGINT);
    ev_signal_start(loop, &d.int_w);

    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    getsockname(lfd, (struct sockaddr *)&sin, &len);
    printf("listening on 127.0.0.1:%d\n", ntohs(sin.sin_port));
    fflush(stdout);

    ev_run(loop, 0);
    printf("bye\n");
    return 0;
}
