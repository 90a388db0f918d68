/* libgreen's side of the patch library's private interface (patch.h):
   the few internals libgreen-patch needs, behind one exported table. */
#include "patchops.h"

#include "core/hub.h"
#include "io.h"

static int ops_coop(void)
{
    struct green__hub *hub = green__hub_peek();
    /* Link callbacks run in the hub context too, so this one test
       covers the hub, libev callbacks and link callbacks. */
    return hub != NULL && !green__in_hub(hub);
}

static int ops_timeout_expired(void)
{
    struct green__hub *hub = green__hub_peek();
    return hub != NULL && hub->current->timeouts_expired > 0;
}

static const struct green__patch_ops ops = {
    GREEN__PATCH_OPS_VERSION,
    sizeof(struct green__patch_ops),
    ops_coop,
    ops_timeout_expired,
    green__io_nonblock,
    green__io_forget,
};

const struct green__patch_ops *green__patch_ops(void)
{
    return &ops;
}
