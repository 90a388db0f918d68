/* green_server_*: gevent's StreamServer.  One acceptor greenlet accepts
   connections and spawns one handler greenlet per connection; a link
   callback on each handler closes its fd and frees its slot, so the fd
   is closed however the handler ended (returned, failed, killed, even
   killed before it ever ran).

   Overload: with a connection limit the acceptor parks while the limit
   is reached, and the kernel's backlog holds new connections.  When
   accept fails for lack of fds (EMFILE, ENFILE) or memory, the
   listening socket stays readable, so waiting for it again would spin
   (ev.pod, "the special problem of accept()ing when you can't"): the
   acceptor sleeps with a growing backoff and tries again, and keeps
   serving the connections it has.

   Lifetime: the server is reference counted (the user's reference, one
   per live connection, and one per call that waits on it: serve_forever
   and stop), so green_server_free from another greenlet never pulls it
   from under a waiting call.  Each hub's servers are on a list (the
   "server" module); when the hub shuts down, its term hook closes their
   listening sockets and connections and detaches them (hub NULL): a
   later green_server_free only frees the memory. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <unistd.h>

#include "io.h"
#include "net.h"

/* Accept backoff after EMFILE and friends: first and longest sleep. */
#define BACKOFF_MIN 0.01
#define BACKOFF_MAX 0.5
/* How long stop waits for handlers it had to kill. */
#define KILL_GRACE 1.0

enum server_state { SERVER_NEW, SERVER_STARTED, SERVER_STOPPED };

struct green_server {
    struct green__hub *hub;      /* owner (servers never cross threads);
                                    NULL once that hub shut down */
    struct green__list node;     /* in the hub's server list */
    int fd;                      /* listening socket, -1 once stopped */
    int port;                    /* bound TCP port, 0 for unix sockets */
    char *unix_path;             /* socket file to unlink at stop */
    void (*handler)(int fd, void *arg);
    void *arg;
    size_t max;                  /* connection limit, 0 = none */
    size_t active;               /* handlers not finished yet */
    struct green__list conns;    /* their struct conn */
    struct green__waitq slotq;   /* the acceptor, while the limit holds */
    struct green__waitq stopq;   /* serve_forever callers */
    green_t *acceptor;           /* accept loop, NULL when not running */
    int state;                   /* enum server_state */
    int refs;                    /* the user's + one per live conn */
};

/* One accepted connection and its handler greenlet. */
struct conn {
    struct green__list node;     /* in server->conns */
    green_server_t *s;
    green_t *g;                  /* the handler greenlet */
    int fd;
};

static void server_unref(green_server_t *s)
{
    if (--s->refs > 0)
        return;
    green__list_remove(&s->node);
    free(s->unix_path);
    free(s);
}

/******************************************************************************/
/*  The hub's servers                                                         */
/******************************************************************************/

static void servers_term(struct green__hub *hub, void *state);
static struct green__module server_module = {.name = "server",
                                             .term = servers_term};

/* Register s on its hub's list; 0 or an errno value. */
static int servers_add(struct green__hub *hub, green_server_t *s)
{
    struct green__list *list = green__module_state(hub, &server_module);
    if (!list) {
        list = malloc(sizeof *list);
        if (!list)
            return ENOMEM;
        green__list_init(list);
        int err = green__module_attach(hub, &server_module, list);
        if (err) {
            free(list);
            return err;
        }
    }
    green__list_push(list, &s->node);
    return 0;
}

/* The hub is going away (its greenlets were already discarded, so no
   link callback will close the connections): close everything each
   server holds and detach it. */
static void server_detach(green_server_t *s)
{
    struct green__list *n;
    while ((n = green__list_pop(&s->conns)) != NULL) {
        struct conn *c = green__container_of(n, struct conn, node);
        green_close(c->fd);
        green_release(c->g);
        free(c);
        s->refs--; /* the user's reference stays */
    }
    s->active = 0;
    if (s->acceptor) {
        green_release(s->acceptor);
        s->acceptor = NULL;
    }
    if (s->fd >= 0)
        green_close(s->fd);
    s->fd = -1;
    if (s->unix_path && s->state != SERVER_STOPPED)
        unlink(s->unix_path);
    s->state = SERVER_STOPPED;
    s->hub = NULL;
}

static void servers_term(struct green__hub *hub, void *state)
{
    (void)hub;
    struct green__list *list = state, *n;
    while ((n = green__list_pop(list)) != NULL)
        server_detach(green__container_of(n, green_server_t, node));
    free(list);
}

/******************************************************************************/
/*  Connections                                                               */
/******************************************************************************/

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    c->s->handler(c->fd, c->s->arg);
    return NULL;
}

/* Link callback (in the hub) once the handler is done, however it
   ended: close the fd, free the slot, let the acceptor go on. */
static void conn_done(green_t *g, void *arg)
{
    (void)g;
    struct conn *c = arg;
    green_server_t *s = c->s;
    green_close(c->fd);
    green__list_remove(&c->node);
    s->active--;
    green__waitq_wake_one(&s->slotq, 0);
    green_release(c->g);
    free(c);
    server_unref(s);
}

/* Start a handler for fd; on failure close fd and return -1/errno. */
static int conn_spawn(green_server_t *s, int fd)
{
    struct conn *c = malloc(sizeof *c);
    green_t *g = c ? green_new(conn_main, c, NULL) : NULL;
    if (!g || green_link(g, conn_done, c) != 0) {
        int err = c ? errno : ENOMEM;
        if (g)
            green_release(g);
        free(c);
        green_close(fd);
        return green__fail(err);
    }
    c->s = s;
    c->g = g;
    c->fd = fd;
    green__list_push(&s->conns, &c->node);
    s->active++;
    s->refs++;
    green_start(g); /* cannot fail: new, same hub */
    return 0;
}

/* Errors from accept that concern one connection only. */
static int accept_transient(int err)
{
    return err == ECONNABORTED || err == EPROTO || err == EINTR ||
           err == EPERM || err == ENETDOWN || err == ENOPROTOOPT ||
           err == EHOSTDOWN || err == ENONET || err == EHOSTUNREACH ||
           err == EOPNOTSUPP || err == ENETUNREACH;
}

/* The acceptor was killed by green_server_stop.  Checked after every
   wait that succeeded: stop may have run (and the user freed the
   server) while the acceptor sat in the run queue, woken but not yet
   resumed, so s must not be touched any more. */
static int acceptor_cancelled(void)
{
    return green__hub_peek()->current->killed;
}

static void *acceptor_main(void *arg)
{
    green_server_t *s = arg;
    double backoff = 0;
    for (;;) {
        while (s->max && s->active >= s->max) {
            struct green__clause w = {.data = NULL};
            if (green__waitq_wait(&s->slotq, &w, -1, "server full") != 0 ||
                acceptor_cancelled())
                return NULL; /* stopped */
        }
        int fd = green_accept(s->fd, NULL, NULL);
        int err = fd < 0 ? errno : 0;
        if (fd >= 0 && acceptor_cancelled()) {
            green_close(fd);
            return NULL;
        }
        if (fd >= 0 && conn_spawn(s, fd) == 0) {
            backoff = 0;
            continue;
        }
        if (fd >= 0)
            err = errno; /* no memory for the handler */
        if (accept_transient(err))
            continue;
        if (err != EMFILE && err != ENFILE && err != ENOBUFS &&
            err != ENOMEM)
            return NULL; /* ECANCELED/EBADF: stopped; else unusable */
        /* Out of fds or memory: the listening socket stays readable, so
           sleep instead of spinning, and keep the other handlers going. */
        backoff = backoff ? backoff * 2 : BACKOFF_MIN;
        if (backoff > BACKOFF_MAX)
            backoff = BACKOFF_MAX;
        if (green_sleep(backoff) != 0 || acceptor_cancelled())
            return NULL;
    }
}

/******************************************************************************/
/*  Creation                                                                  */
/******************************************************************************/

static int listen_unix(green_server_t *s, const char *path)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof a.sun_path)
        return green__fail(EINVAL);
    memcpy(a.sun_path, path, len + 1);
    s->unix_path = strdup(path);
    if (!s->unix_path)
        return green__fail(ENOMEM);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    green__io_adopt(fd, 1, 0);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int err = errno;
        green_close(fd);
        /* Not ours: never unlink a file we did not create. */
        free(s->unix_path);
        s->unix_path = NULL;
        return green__fail(err);
    }
    if (listen(fd, SOMAXCONN) != 0) {
        int err = errno;
        green_close(fd);
        return green__fail(err);
    }
    return fd;
}

/* "host:port", "[v6]:port", ":port" (all interfaces). */
static int listen_tcp(const char *address)
{
    const char *colon = strrchr(address, ':');
    if (!colon)
        return green__fail(EINVAL);
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || errno || port < 0 || port > 65535)
        return green__fail(EINVAL);
    const char *h = address;
    size_t hlen = (size_t)(colon - address);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    } else if (memchr(h, ':', hlen)) {
        return green__fail(EINVAL); /* IPv6 needs brackets */
    }
    char host[256];
    if (hlen >= sizeof host)
        return green__fail(EINVAL);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return green_tcp_listen(hlen ? host : NULL, (int)port, SOMAXCONN);
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

green_server_t *green_server_new(const char *address,
                                 void (*handler)(int fd, void *arg),
                                 void *arg)
{
    if (!address || !handler) {
        errno = EINVAL;
        return NULL;
    }
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return NULL;
    green_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    s->hub = hub;
    green__list_init(&s->node);
    s->handler = handler;
    s->arg = arg;
    s->refs = 1;
    green__list_init(&s->conns);
    green__waitq_init(&s->slotq);
    green__waitq_init(&s->stopq);
    if (strncmp(address, "unix:", 5) == 0)
        s->fd = listen_unix(s, address + 5);
    else
        s->fd = listen_tcp(address);
    int err = s->fd < 0 ? errno : servers_add(hub, s);
    if (err) {
        if (s->fd >= 0)
            green_close(s->fd);
        if (s->unix_path && s->fd >= 0)
            unlink(s->unix_path);
        free(s->unix_path);
        free(s);
        errno = err;
        return NULL;
    }
    s->port = bound_port(s->fd);
    return s;
}

/******************************************************************************/
/*  Running and stopping                                                      */
/******************************************************************************/

/* 0 if s is usable from this thread, else an errno value (a server
   whose hub shut down is stopped: its calls do nothing). */
static int check_server(const green_server_t *s)
{
    if (!s)
        return EINVAL;
    if (s->hub && s->hub != green__hub_peek())
        return EXDEV;
    return 0;
}

int green_server_set_max_connections(green_server_t *s, size_t max)
{
    int err = check_server(s);
    if (err)
        return green__fail(err);
    s->max = max;
    /* A raised limit may let the acceptor go on at once. */
    green__waitq_wake_all(&s->slotq, 0);
    return 0;
}

int green_server_start(green_server_t *s)
{
    int err = check_server(s);
    if (err)
        return green__fail(err);
    if (s->state == SERVER_STARTED)
        return 0;
    if (s->state == SERVER_STOPPED || !s->hub)
        return green__fail(EINVAL);
    green_attr_t attr = {0, "server-acceptor"};
    s->acceptor = green_new(acceptor_main, s, &attr);
    if (!s->acceptor || green_start(s->acceptor) != 0)
        return -1;
    s->state = SERVER_STARTED;
    return 0;
}

int green_server_serve_forever(green_server_t *s)
{
    if (green_server_start(s) != 0)
        return -1;
    /* Our reference: a green_server_free meanwhile only stops it. */
    s->refs++;
    int err = 0;
    while (s->state != SERVER_STOPPED && !err) {
        struct green__clause w = {.data = NULL};
        if (green__waitq_wait(&s->stopq, &w, -1, "serving") != 0) {
            err = errno;
            /* Killed (gevent stops the server then too). */
            if (err == ECANCELED)
                green_server_stop(s, 0);
        }
    }
    server_unref(s);
    return err ? green__fail(err) : 0;
}

int green_server_stop(green_server_t *s, double timeout)
{
    int err = check_server(s);
    if (!err && timeout != timeout)
        err = EINVAL;
    if (err)
        return green__fail(err);
    if (s->state == SERVER_STOPPED)
        return 0;
    s->state = SERVER_STOPPED;
    /* Our reference: a green_server_free meanwhile must wait for us. */
    s->refs++;
    /* Stop accepting: cancel the acceptor (and let it finish, when this
       context can wait), then close the socket. */
    if (s->acceptor) {
        green_t *a = s->acceptor;
        s->acceptor = NULL;
        green_kill(a, green__can_block(-1) ? 0 : KILL_GRACE);
        green_release(a);
    }
    green_close(s->fd);
    s->fd = -1;
    if (s->unix_path)
        unlink(s->unix_path);
    green__waitq_wake_all(&s->slotq, ECANCELED);

    /* Let the handlers finish up to timeout, then kill the rest.  Take
       references: their link callbacks free the conns meanwhile. */
    size_t n = 0;
    green_t **gs = s->active ? malloc(s->active * sizeof *gs) : NULL;
    green_t *self = green_current();
    struct green__list *it;
    int rc = 0;
    if (s->active && !gs) {
        /* No memory to wait on them: kill them at once.  Cancelling
           only queues their link callbacks, so the list stays intact. */
        green__list_foreach(it, &s->conns) {
            struct conn *c = green__container_of(it, struct conn, node);
            if (c->g != self)
                green_kill(c->g, 0);
        }
        rc = green__fail(ENOMEM);
    }
    if (gs)
        green__list_foreach(it, &s->conns) {
            struct conn *c = green__container_of(it, struct conn, node);
            if (c->g != self)
                gs[n++] = green_retain(c->g);
        }
    if (n && green_joinall(gs, n, timeout) != 0) {
        /* ETIMEDOUT, or we cannot wait here (killed, in the hub). */
        green_killall(gs, n, KILL_GRACE);
    }
    for (size_t i = 0; i < n; i++)
        green_release(gs[i]);
    free(gs);
    green__waitq_wake_all(&s->stopq, 0);
    server_unref(s);
    return rc;
}

int green_server_port(const green_server_t *s)
{
    if (!s)
        return green__fail(EINVAL);
    return s->port;
}

void green_server_free(green_server_t *s)
{
    if (!s)
        return;
    if (s->state != SERVER_STOPPED)
        green_server_stop(s, 0);
    server_unref(s);
}
