/* The tutorial's greenlet state: a winner returns a value, a loser fails
   (green_fail is C's raised exception).  After the join, both are done;
   only the winner succeeded and has a value, the loser has an error. */
#include <errno.h>
#include <green.h>
#include <stdio.h>
#include <string.h>

/* tutorial:begin state */
static void *win(void *arg)
{
    (void)arg;
    return "You win!";
}

static void *fail(void *arg)
{
    (void)arg;
    green_fail(EPROTO); /* "raise": the greenlet ends with an error */
    return NULL;        /* not reached */
}

static void show(const char *who, green_t *g)
{
    const char *value = green_value(g);
    printf("%s: done %d, successful %d, value %s, error %s\n", who,
           green_done(g), green_done(g) && green_error(g) == 0,
           value ? value : "(null)",
           green_error(g) ? strerror(green_error(g)) : "none");
}

int main(void)
{
    green_t *winner = green_spawn(win, NULL);
    green_t *loser = green_spawn(fail, NULL);
    if (!winner || !loser) {
        perror("green_spawn");
        return 1;
    }
    show("winner before join", winner);
    green_t *both[2] = {winner, loser};
    green_joinall(both, 2, -1);
    show("winner", winner);
    show("loser", loser);
    green_release(winner);
    green_release(loser);
    return 0;
}
/* tutorial:end */
