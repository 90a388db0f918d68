/* Process figures read from /proc, shared by the Check suites (through
   testutil.h) and by the stress test, which does not link Check. */
#ifndef GREEN_PROCSTAT_H_INCLUDED
#define GREEN_PROCSTAT_H_INCLUDED

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Sanitizer builds run much slower and hold freed memory in quarantine:
   time bounds stretch and RSS bounds are skipped there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GREEN_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define GREEN_TEST_SANITIZED 1
#endif
#endif
#ifndef GREEN_TEST_SANITIZED
#define GREEN_TEST_SANITIZED 0
#endif

static inline double test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resident set size in KiB (0 if /proc is unreadable). */
static inline long test_rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Number of mappings of this process that are not writable and
   executable at once (-1 if unreadable).  libgreen never maps such
   memory; Valgrind maps its own tool memory (translations, shadow
   memory) that way inside the process, growing with what the program
   touches, so leaving those out lets a stack leak show under Valgrind
   as it does natively. */
static inline int test_map_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    int n = 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char perms[5] = "";
        if (sscanf(line, "%*s %4s", perms) == 1 && strcmp(perms, "rwxp") != 0)
            n++;
        /* A line longer than the buffer (a long path): skip its rest. */
        while (!strchr(line, '\n') && fgets(line, sizeof line, f))
            ;
    }
    fclose(f);
    return n;
}

/* Number of threads of this process (-1 if unreadable). */
static inline int test_thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

/* Number of open fds of this process, not counting the one used to list
   them (-1 if unreadable). */
static inline int test_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

#endif
