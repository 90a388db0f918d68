/* Raw system calls for the I/O libgreen does on user fds.

   The patch library (LD_PRELOAD) interposes read, write, connect, close,
   poll, ... process-wide.  If libgreen called those libc symbols itself,
   every green_read would re-enter the interposer, which would call
   green_read again.  So libgreen's own I/O goes straight to the kernel
   through syscall(2), which nobody interposes.  Each wrapper has the libc
   call's result and errno. */
#ifndef GREEN_SYS_H_INCLUDED
#define GREEN_SYS_H_INCLUDED

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static inline ssize_t green__sys_read(int fd, void *buf, size_t n)
{
    return syscall(SYS_read, fd, buf, n);
}

static inline ssize_t green__sys_write(int fd, const void *buf, size_t n)
{
    return syscall(SYS_write, fd, buf, n);
}

static inline ssize_t green__sys_readv(int fd, const struct iovec *iov,
                                       int cnt)
{
    return syscall(SYS_readv, fd, iov, cnt);
}

static inline ssize_t green__sys_writev(int fd, const struct iovec *iov,
                                        int cnt)
{
    return syscall(SYS_writev, fd, iov, cnt);
}

static inline ssize_t green__sys_recvfrom(int fd, void *buf, size_t n,
                                          int flags, struct sockaddr *addr,
                                          socklen_t *len)
{
    return syscall(SYS_recvfrom, fd, buf, n, flags, addr, len);
}

static inline ssize_t green__sys_sendto(int fd, const void *buf, size_t n,
                                        int flags,
                                        const struct sockaddr *addr,
                                        socklen_t len)
{
    return syscall(SYS_sendto, fd, buf, n, flags, addr, len);
}

static inline ssize_t green__sys_recvmsg(int fd, struct msghdr *msg,
                                         int flags)
{
    return syscall(SYS_recvmsg, fd, msg, flags);
}

static inline ssize_t green__sys_sendmsg(int fd, const struct msghdr *msg,
                                         int flags)
{
    return syscall(SYS_sendmsg, fd, msg, flags);
}

static inline int green__sys_accept4(int fd, struct sockaddr *addr,
                                     socklen_t *len, int flags)
{
    return (int)syscall(SYS_accept4, fd, addr, len, flags);
}

static inline int green__sys_connect(int fd, const struct sockaddr *addr,
                                     socklen_t len)
{
    return (int)syscall(SYS_connect, fd, addr, len);
}

static inline int green__sys_close(int fd)
{
    return (int)syscall(SYS_close, fd);
}

/* poll(2); architectures without SYS_poll (arm64) only have ppoll. */
static inline int green__sys_poll(struct pollfd *fds, nfds_t n, int ms)
{
#ifdef SYS_poll
    return (int)syscall(SYS_poll, fds, n, ms);
#else
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    return (int)syscall(SYS_ppoll, fds, n, ms < 0 ? NULL : &ts, NULL,
                        (size_t)(_NSIG / 8));
#endif
}

/* fcntl(2) with an int (or no) argument: F_GETFL, F_SETFL, F_GETFD. */
static inline int green__sys_fcntl(int fd, int cmd, int arg)
{
    return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

#endif
