/* The half of context.h that does not depend on the backend: what a
   new context does on entry and what a dead one releases, both only
   sanitizer bookkeeping (context_san.h). */
#include "context.h"

#include "context_san.h"

void green__ctx_entered(struct green__ctx *self)
{
    (void)self;
    green__san_after_switch(NULL);
}

void green__ctx_destroy(struct green__ctx *ctx)
{
    green__san_destroy(ctx);
}
