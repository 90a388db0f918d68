/* Helpers shared by the I/O suites (check_io, check_poll, check_net,
   check_server).  Raw libc sockets on loopback only. */
#ifndef GREEN_IOTEST_H_INCLUDED
#define GREEN_IOTEST_H_INCLUDED

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "testutil.h"

/* A connected AF_UNIX stream pair (blocking, as the user would have). */
static inline void test_socketpair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

/* A listening loopback TCP socket with the given backlog; *addr gets its
   address. */
static inline int test_listener(int backlog, struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof *addr;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)addr, len), 0);
    ck_assert_int_eq(listen(fd, backlog), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    return fd;
}

/* A loopback address on which connect() stays in progress: a listener
   with backlog 0 whose single queue slot is taken and never accepted
   (Linux then drops further SYNs).  *plugs gets the fds to close. */
static inline int test_stuck_listener(struct sockaddr_in *addr, int plugs[2])
{
    int l = test_listener(0, addr);
    plugs[0] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(plugs[0], (struct sockaddr *)addr, sizeof *addr);
    plugs[1] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(plugs[1], (struct sockaddr *)addr, sizeof *addr);
    /* Let the first handshake complete so the queue is really full. */
    usleep(20000);
    return l;
}

/* Number of open fds of this process. */
static inline int test_count_fds(void)
{
    int n = test_fd_count();
    ck_assert_int_ge(n, 0);
    return n;
}

/* IPv6 loopback usable here?  (Containers may lack it.) */
static inline int test_have_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static inline int test_is_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    ck_assert_int_ge(fl, 0);
    return (fl & O_NONBLOCK) != 0;
}

static inline int test_is_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    ck_assert_int_ge(fl, 0);
    return (fl & FD_CLOEXEC) != 0;
}

/* Raise the soft fd limit to at least n (within the hard limit). */
static inline int test_want_fds(rlim_t n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur >= n)
        return 1;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < n)
        return 0;
    rl.rlim_cur = n;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

#endif
