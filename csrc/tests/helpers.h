/*
 * helpers.h: what the C test files share (helpers.c), and every test's
 * declaration for the table in test_main.c.
 *
 * The tests, by file:
 *   test_enums.c      the enum tables and their strings, the constants
 *   test_errors.c     errors: per thread, invalid jobs, ends without a job
 *   test_domain.c     refs, getters, removal, pins
 *   test_job.c        sync/async/nested begins and ends, masks, jobs_queued,
 *                     max_queued, timeouts and deadlines
 *   test_wakeups.c    wake-ups, FIFO order, the mask's waiters, async ends
 *   test_wait.c       sliced (pending) waits, edge cases
 *   test_cancel.c     cancel_waiters, cancelling after a foreign end
 *   test_migration.c  the seed's migration helpers, phases, claim_parked, abort
 *   test_migration_refs.c  the refcounts of the migration helpers
 *   test_notify.c     notifiers (event-loop waiters)
 *   test_races.c      races: async against sync, nested between queries
 *   test_stress.c     stress and chaos runs (one thread of them: stress.c)
 *   test_agent.c      the agent slot, nowait begins, the hand-off on a
 *                     wider mask, uuids
 *   test_review.c     the defects review found: expired waiters, abandon,
 *                     the error stack, the refs limit
 * Static helpers in a test file carry its prefix (errors_, dom_, job_, wake_,
 * wait_, cancel_, mig_, migrefs_, notify_, races_, stress_, agent_, main_).
 */
#ifndef MJ_TEST_HELPERS_H
#define MJ_TEST_HELPERS_H

#include "harness.h"
#include "migjob.h"
#include "testing.h"  /* the tests' hooks: mj_noop, mj_testing_* */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* generous upper bound for "this should be quick" timings: sanitizers and
 * a loaded 2-CPU machine are slow */
#define SLACK 3.0

/* ------------------------------------------------------------------------ */
/* utilities                                                                */

double now_s(void);                 /* CLOCK_MONOTONIC seconds */
void sleep_s(double s);             /* s <= 0: no sleep */
uint64_t self_id(void);             /* this thread, as the core records it */

/* a new domain; exits the run if it cannot be made */
mj_domain *fresh(const char *name, double default_timeout,
                 unsigned int max_queued, bool strict);
/* Bring refs to 0 (whatever is still held) and drop the creator's pin, so
 * that ASan's leak checker sees every domain freed. */
void dispose(mj_domain *d);
/* poll until refs == n (at most 10 s); true when reached */
bool wait_refs(mj_domain *d, int n);
/* poll until *flag != 0 (at most `limit` s); true when set */
bool wait_flag(atomic_int *flag, double limit);
/* mj_async_job_to_string, "?" for an unknown kind */
const char *async_job_label(int async_job);

/* ------------------------------------------------------------------------ */
/* a worker thread that begins one job, optionally holds it, and ends it     */

enum { W_SYNC, W_ASYNC, W_NESTED, W_MIGSTART, W_ABORT };

typedef struct worker {
    mj_domain *d;
    int op;               /* W_* */
    int kind;             /* job or async job kind */
    const char *api;
    double timeout;
    atomic_int *release;  /* hold until *release != 0; NULL: end at once */
    double hold;          /* extra seconds to hold */
    void (*in_job)(struct worker *);
    void *user;
    /* results */
    int rc;
    int err;
    char msg[256];
    double waited;
    long seq;             /* global acquisition order */
    int seen_active, seen_async;
    uint64_t seen_mask, seen_owner;
    int end_rc;
    atomic_int acquired;
    atomic_int done;
    pthread_t th;
} worker;

extern atomic_long g_seq;           /* the workers' acquisition counter */

void worker_init(worker *w, mj_domain *d, int op, int kind,
                 const char *api, double timeout);
void worker_start(worker *w);
/* start w and wait until its begin is queued (refs reached `refs`) */
void worker_start_queued(worker *w, int refs);
void worker_join(worker *w);
/* mj_end_job (async: mj_end_async_job) of d from a new thread, joined: a
 * caller other than the one the job was given to; returns its result */
int end_job_elsewhere(mj_domain *d, bool async);

/* ------------------------------------------------------------------------ */
/* a probe for "two threads held the sync slot at once": call
 * exclusive_enter/leave around the held section, reset g_overlap first */

extern atomic_int g_overlap;
void exclusive_enter(void);
void exclusive_leave(void);

/* ------------------------------------------------------------------------ */
/* the tests, by file (test_main.c lists them in the order they run)       */

/* test_enums.c */
void test_enum_job(void);
void test_enum_async_job(void);
void test_enum_phase(void);
void test_enum_job_info_type(void);
void test_async_job_phase_dispatch(void);
void test_constants(void);

/* test_errors.c */
void test_error_basics(void);
void test_error_invalid_job(void);
void test_error_end_without_job(void);
void test_error_nested_wrong_async(void);

/* test_domain.c */
void test_refs_basic(void);
void test_owners_and_info(void);
void test_remove_fails_waiters(void);
void test_pins_and_dead_domain(void);

/* test_job.c */
void test_masks(void);
void test_jobs_queued(void);
void test_max_queued(void);
void test_timeouts(void);
void test_deadline_across_slices(void);

/* test_wakeups.c */
void test_wake_all_waiters(void);
void test_many_waiters_cycles(void);
void test_fifo_order(void);
void test_mask_blocked_does_not_block_allowed(void);
void test_end_async_wakes(void);

/* test_wait.c */
void test_sliced_waits(void);
void test_pending_stack(void);
void test_edge_cases(void);

/* test_cancel.c */
void test_cancel_waiters(void);
void test_cancel_after_foreign_end(void);

/* test_migration.c */
void test_error_check_migration(void);
void test_phases(void);
void test_claim_parked(void);
void test_claim_parked_not_while_driven(void);
void test_abort(void);

/* test_migration_refs.c */
void test_refs_v3_change_protection(void);
void test_refs_destination(void);
void test_refs_v3_no_change_protection(void);
void test_refs_v2_and_p2p(void);
void test_refs_start_phase_refused(void);
void test_refused_phase_changes_no_owner(void);
void test_refs_domain_disappeared(void);

/* test_postcopy.c */
void test_migration_job_is_allowed(void);
void test_api_flags(void);
void test_release_and_discard(void);
void test_restore_async_job(void);
void test_postcopy_failed_and_resume(void);
void test_job_data(void);

/* the event-loop calls on a waiter pointer the test tracks itself (the
 * library's calls keep it in a caller-owned cell) */
static inline mj_waiter *t_detach(mj_notifier *n)
{
    mj_waiter *w = NULL;

    return mj_pending_detach(n, &w) == 0 ? w : NULL;
}
static inline int t_poll(mj_waiter *w) { return mj_waiter_poll(&w); }
static inline void t_cancel(mj_waiter *w) { mj_waiter_cancel(&w); }

/* test_review.c */
void test_expired_waiter_passed_over(void);
void test_abandon_gives_back_its_own(void);
void test_errors_are_a_stack(void);
void test_refs_limit(void);

/* test_agent.c */
void test_agent_slot(void);
void test_agent_ignores_mask(void);
void test_agent_fifo_across_slots(void);
void test_nowait(void);
void test_agent_max_queued(void);
void test_mask_widening_hands_off(void);
void test_uuid(void);
void test_handoff_for_others(void);

/* test_notify.c */
void test_notifier_basics(void);
void test_notifier_event_loop(void);
void test_notifier_cancel_after_foreign_end(void);

/* test_races.c */
void test_async_sync_race(void);
void test_nested_interleaving(void);

/* test_stress.c */
void test_stress(void);
void test_stress_max_queued(void);
void test_stress_lifecycle(void);

#endif
