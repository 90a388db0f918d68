/* green_tcp_listen and green_tcp_connect.

   Name resolution: numeric addresses (green__numeric_host, the same
   check libgreen-patch uses) are parsed with getaddrinfo(AI_NUMERICHOST),
   which never blocks.  Anything else
   ("localhost", names from /etc/hosts or DNS) is looked up with
   green_getaddrinfo in the hub's threadpool while the greenlet waits;
   from the hub itself (where nothing may block cooperatively) it falls
   back to a plain getaddrinfo. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "fd.h"
#include "io.h"
#include "net.h"
#include "core/sys.h"

/* An EAI_* code as an errno value. */
static int gai_errno(int rc)
{
    switch (rc) {
    case EAI_SYSTEM:
        return errno ? errno : EIO;
    case EAI_MEMORY:
        return ENOMEM;
    case EAI_SERVICE:
    case EAI_FAMILY:
    case EAI_SOCKTYPE:
    case EAI_BADFLAGS:
        return EINVAL;
    default: /* EAI_NONAME, EAI_NODATA, EAI_AGAIN, EAI_FAIL, ... */
        return ENOENT;
    }
}

int green__resolve(const char *host, int port, int passive,
                   struct addrinfo **res)
{
    if (port < 0 || port > 65535)
        return green__fail(EINVAL);
    char serv[8];
    snprintf(serv, sizeof serv, "%d", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    int rc;
    if (green__numeric_host(host)) {
        hints.ai_flags |= AI_NUMERICHOST;
        rc = getaddrinfo(host, serv, &hints, res);
    } else if (green__io_coop()) {
        /* A real lookup, in the threadpool (see the top comment). */
        rc = green_getaddrinfo(host, serv, &hints, res);
    } else {
        rc = getaddrinfo(host, serv, &hints, res);
    }
    return rc ? green__fail(gai_errno(rc)) : 0;
}

/* A non-blocking, close-on-exec stream socket known to io.c. */
int green__socket(int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0)
        green__fd_adopt(fd, GREEN__FD_SOCKET);
    return fd;
}

int green__numeric_host(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return !host || inet_pton(AF_INET, host, buf) == 1 ||
           inet_pton(AF_INET6, host, buf) == 1;
}

/* Bind and listen on one address.  Returns the fd or -1 with errno. */
static int listen_on(const struct sockaddr *addr, socklen_t len,
                     int backlog, int dual_stack)
{
    int fd = green__socket(addr->sa_family);
    if (fd < 0)
        return -1;
    int one = 1, zero = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (dual_stack && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
                                  sizeof zero) != 0) ||
        bind(fd, addr, len) != 0 || listen(fd, backlog) != 0) {
        int err = errno;
        green_close(fd);
        return green__fail(err);
    }
    return fd;
}

int green_tcp_listen(const char *host, int port, int backlog)
{
    if (backlog <= 0)
        backlog = SOMAXCONN;
    if (!host || !*host || strcmp(host, "*") == 0) {
        /* All interfaces: one dual-stack IPv6 socket if the host has
           IPv6, else IPv4 only. */
        struct sockaddr_in6 a6;
        memset(&a6, 0, sizeof a6);
        a6.sin6_family = AF_INET6;
        a6.sin6_addr = in6addr_any;
        a6.sin6_port = htons((uint16_t)port);
        if (port < 0 || port > 65535)
            return green__fail(EINVAL);
        int fd = listen_on((struct sockaddr *)&a6, sizeof a6, backlog, 1);
        if (fd >= 0 || (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL &&
                        errno != EINVAL))
            return fd;
        host = "0.0.0.0";
    }
    struct addrinfo *res;
    if (green__resolve(host, port, 1, &res) != 0)
        return -1;
    int fd = -1, err = EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = listen_on(ai->ai_addr, ai->ai_addrlen, backlog, 0);
        if (fd >= 0)
            break;
        err = errno;
    }
    freeaddrinfo(res);
    return fd >= 0 ? fd : green__fail(err);
}

int green_tcp_connect(const char *host, int port, double timeout)
{
    if (timeout != timeout)
        return green__fail(EINVAL);
    struct addrinfo *res;
    if (green__resolve(host, port, 0, &res) != 0)
        return -1;
    double deadline = timeout > 0 ? green__now() + timeout : 0;
    int fd = -1, err = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = green__socket(ai->ai_family);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (green__sys_connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        err = errno;
        if (err == EINPROGRESS) {
            /* The timeout covers every address tried. */
            double left = timeout;
            if (timeout > 0) {
                left = deadline - green__now();
                if (left <= 0)
                    left = 1e-9;
            }
            err = green__io_wait(fd, GREEN__IO_WRITE, left) ? errno : 0;
            if (!err) {
                socklen_t sl = sizeof err;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0)
                    err = errno;
            }
            if (!err)
                break;
        }
        green_close(fd);
        fd = -1;
        /* Out of time or cancelled: trying further addresses is moot. */
        if (err == ETIMEDOUT || err == ECANCELED || err == EDEADLK ||
            err == EAGAIN || err == EINVAL)
            break;
    }
    freeaddrinfo(res);
    return fd >= 0 ? fd : green__fail(err);
}
