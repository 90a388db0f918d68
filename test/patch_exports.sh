#!/bin/sh
# libgreen-patch.so exports the interposed libc names (at least the
# blocking calls and the glibc fortify entry points) plus green_*
# symbols, nothing else; libgreen.so exports one private green__ symbol
# for it (green__patch_ops).
set -e
so="${top_builddir:-.}/lib/.libs/libgreen-patch.so"
syms=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWi]$/ {print $3}' | sort)
required="sleep usleep nanosleep read write readv writev recv recvfrom
recvmsg send sendto sendmsg accept accept4 connect poll select close fcntl
getaddrinfo __read_chk __recv_chk __recvfrom_chk __poll_chk __poll
green_patch_all green_patch_active"
for s in $required; do
    echo "$syms" | grep -qx "$s" || { echo "missing: $s"; exit 1; }
done
extra="ppoll __ppoll_chk pselect clock_nanosleep fcntl64 ioctl setsockopt
socket socketpair pipe pipe2 dup dup2 dup3 fclose fdopen popen pclose
sendfile sendfile64 gethostbyname gethostbyaddr gethostbyname_r
getnameinfo sigaction signal pread pread64 pwrite pwrite64 fsync fdatasync
__pread_chk __pread64_chk"
# Of libgreen's own names, only the patch switches: libgreen-patch
# intercepts no green_* function (green_close used to be wrapped).
bad=$(echo "$syms" | grep -v '^green_patch_all$' |
    grep -v '^green_patch_active$' | while read -r s; do
    case " $(echo $required $extra) " in *" $s "*) ;; *) echo "$s" ;; esac
done)
if test -n "$bad"; then
    echo "unexpected symbols exported by libgreen-patch.so:"; echo "$bad"
    exit 1
fi
echo "libgreen-patch.so exports $(echo "$syms" | wc -l) symbols, all expected"
