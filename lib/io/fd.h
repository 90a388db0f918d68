/* The process-wide fd table: what libgreen and libgreen-patch know about
   each fd number (fd.c).

   fds belong to the process, not to a hub, so this table is
   process-wide: one entry per fd number, in 1024-entry chunks allocated
   on first use (the first chunk is static).  An entry records whether
   O_NONBLOCK is set underneath (by us or by the caller), the caller's
   own view of that flag, and the fd's kind.  Entries are small atomics:
   after first sight a call reads its entry with no lock and no syscall.

   The per-hub half of an fd (its ev_io watchers and the clauses parked
   on them) lives in the io module's state of each hub (io.c), indexed
   by the same number; green__fd_forget resets both halves.

   Only numbers the process can have get an entry: a negative fd, or one
   at or above RLIMIT_NOFILE that is not open, is EBADF at once and
   never grows a table. */
#ifndef GREEN_FD_H_INCLUDED
#define GREEN_FD_H_INCLUDED

#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>

/* Entry states. */
enum green__fd_state {
    GREEN__FD_UNKNOWN,  /* never looked at, or forgotten by a close */
    GREEN__FD_BUSY,     /* first sight in progress in some thread */
    GREEN__FD_PASS,     /* the patch library leaves it alone (file, tty,
                           a pipe on fds 0-2): plain libc calls */
    GREEN__FD_MANAGED   /* O_NONBLOCK underneath; user_nb is the
                           caller's own view */
};

/* What an fd is (fstat at first sight). */
enum green__fd_kind {
    GREEN__FD_OTHER,    /* character device other than a tty, ... */
    GREEN__FD_SOCKET,   /* writes use send(MSG_NOSIGNAL); has
                           SO_RCVTIMEO/SO_SNDTIMEO */
    GREEN__FD_FIFO,     /* pipe or FIFO: writes block SIGPIPE */
    GREEN__FD_TTY,
    GREEN__FD_FILE      /* regular file or block device: never EAGAIN */
};

struct green__fdinfo {
    atomic_uchar state;         /* enum green__fd_state */
    atomic_uchar user_nb;       /* the caller's O_NONBLOCK (MANAGED) */
    atomic_uchar kind;          /* enum green__fd_kind (MANAGED, PASS) */
    atomic_uchar stream;        /* a SOCK_STREAM socket (MSG_WAITALL) */
};

/* Who asks for first sight (green__fd_see). */
enum green__fd_policy {
    GREEN__FD_ANY,      /* libgreen's own calls: manage any fd */
    GREEN__FD_PATCHED   /* libgreen-patch: sockets, and FIFOs above fd 2
                           (0-2 are often shared with a shell or make,
                           which must not see O_NONBLOCK appear) */
};

/* fd's entry if it has one (no allocation, no syscall), else NULL. */
struct green__fdinfo *green__fd_peek(int fd);

/* 1 if the process can have fd: below the soft RLIMIT_NOFILE (cached;
   no syscall below it), or open anyway.  Says nothing of whether fd is
   open now. */
int green__fd_possible(int fd);

/* fd's entry, looked at first if needed under the given policy: set
   O_NONBLOCK (remembering whether the caller had it) and learn the
   kind.  Returns 0 with *ep the entry (MANAGED), or with *ep NULL when
   the patch policy passes the fd through; -1 with errno: EBADF (negative,
   not open, or a number the process cannot have), ENOMEM, EAGAIN
   (another thread's first sight of the fd did not finish).  Under
   GREEN__FD_ANY an epoll fd is EBADF (it may be libev's own).  errno is
   left alone on success. */
int green__fd_see(int fd, int policy, struct green__fdinfo **ep);

/* 1 if fd (whose fstat st_mode is mode) is an epoll fd.  libgreen's
   own calls refuse those with EBADF (see io.c's fd_watchable). */
int green__fd_is_epoll(int fd, mode_t mode);

/* libgreen just created fd, already in O_NONBLOCK (not by the caller):
   record it as managed, so that no call needs a syscall to learn it. */
void green__fd_adopt(int fd, int kind);

/* fd is about to be closed or replaced (close, dup2 onto it), or is a
   fresh number whose previous fd was closed behind our back: wake its
   waiters in this thread's hub with EBADF, stop its watchers, and
   forget the entry.  Never creates a hub.  Does not close fd. */
void green__fd_forget(int fd);

/* fd is behind a FILE* the patch library does not control (popen, an
   fdopen before patching): glibc's stdio calls its internal read and
   write, which must never meet an O_NONBLOCK libgreen set.  Clear that
   flag if we set it, and have the patch library pass the fd through
   until it is closed. */
void green__fd_pass(int fd);

/* newfd now shares oldfd's open file description (dup, dup2, F_DUPFD):
   it has the same O_NONBLOCK underneath, so it inherits the entry. */
void green__fd_copy(int oldfd, int newfd);

/* Directions: index into an entry's watchers (io.c). */
#define GREEN__IO_READ 0
#define GREEN__IO_WRITE 1
/* The file hook's other operations (io.h). */
#define GREEN__IO_FSYNC 2
#define GREEN__IO_FDATASYNC 3

/* What green__io_retry does with an attempt's result and while it
   waits (flags of struct green__io_op). */
#define GREEN__IO_ALL 0x1    /* a blocking write or MSG_WAITALL: loop
                                until `total` bytes, EOF or an error;
                                an error after progress returns the
                                progress */
#define GREEN__IO_THREAD 0x2 /* the patch library: where the caller
                                cannot park (no hub, the hub, a
                                callback), block the thread in poll(2)
                                as the blocking call would have */

/* One operation for green__io_retry. */
struct green__io_op {
    /* One non-blocking attempt, `done` bytes into the operation (always 0
       without GREEN__IO_ALL).  The syscall's result and errno. */
    ssize_t (*try)(int fd, void *arg, size_t done);
    void *arg;
    size_t total;  /* GREEN__IO_ALL: bytes wanted */
    int dir;       /* GREEN__IO_READ or GREEN__IO_WRITE */
    int flags;     /* GREEN__IO_* */
};

#endif
