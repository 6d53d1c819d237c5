/*
 * stress.h: one thread of the stress and chaos runs (stress.c), for the
 * runs in test_stress.c: its arguments, counters out, and its main.
 *
 * Part of the C test program (csrc/tests/run.sh).
 */
#ifndef MJ_TEST_STRESS_H
#define MJ_TEST_STRESS_H

#include "helpers.h"

#define STRESS_MAX_DOMS 4

typedef struct {
    mj_domain *ds[STRESS_MAX_DOMS];
    atomic_int *holders_of[STRESS_MAX_DOMS];   /* per domain */
    atomic_int *agent_holders_of[STRESS_MAX_DOMS];
    int nd;
    int id;
    double until;
    bool limited;           /* max_queued set: QueueFull is acceptable */
    bool chaos;             /* domains get removed / cancelled meanwhile */
    atomic_long *violations;
    /* the domain of the current operation */
    mj_domain *d;
    atomic_int *holders;
    atomic_int *agent_holders;
    mj_notifier *notifier;  /* this thread's event loop */
    long n_sync, n_async, n_nested, n_sliced, n_notified, n_abort, n_fail_ok;
    long n_agent, n_nowait_busy;
} stress_arg;

/* random operations over a->ds[0..nd) until a->until, checking every
 * invariant it can see; counts into a's counters, violations into
 * *a->violations.  A pthread start routine. */
void *stress_main(void *arg);

#endif
