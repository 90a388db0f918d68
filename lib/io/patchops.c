/* libgreen's side of the patch library's private interface
   (patchops.h): the fd table, the retry loop and the few checks
   libgreen-patch needs, behind one exported table. */
#include "patchops.h"

#include "fd.h"
#include "io.h"
#include "net.h"

static const struct green__patch_ops ops = {
    GREEN__PATCH_OPS_VERSION,
    sizeof(struct green__patch_ops),
    green__io_coop,
    green__fd_peek,
    green__fd_see,
    green__fd_forget,
    green__fd_copy,
    green__fd_pass,
    green__io_retry,
    green__io_connect,
    green__numeric_host,
    green__io_signal_probe,
    green__io_file_hook,
};

const struct green__patch_ops *green__patch_ops(void)
{
    return &ops;
}
