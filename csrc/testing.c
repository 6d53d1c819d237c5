/*
 * testing.c: the hooks of csrc/testing.h -- for the project's own tests and
 * benchmarks, not for a daemon; mj_granted, which every begin's grant
 * returns through, fires the signal hook.
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */
#include "testing.h"

#include <signal.h>

static _Thread_local int testing_grant_signal;

void
mj_testing_signal_on_grant(int signo)
{
    testing_grant_signal = signo;
}

int
mj_granted(void)
{
    int signo = testing_grant_signal;

    if (signo) {
        testing_grant_signal = 0;
        raise(signo);
    }
    return 0;
}

int
mj_testing_set_refs(mj_domain *d, int refs)
{
    int now = atomic_load_explicit(&d->refs, memory_order_relaxed);

    while (now > 0 && refs > 0)
        if (atomic_compare_exchange_weak_explicit(&d->refs, &now, refs,
                                                  memory_order_acq_rel,
                                                  memory_order_relaxed))
            return 0;
    return -1;
}

void
mj_noop(void)
{
}
