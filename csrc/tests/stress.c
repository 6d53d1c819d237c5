/*
 * stress.c: one thread of the stress and chaos runs (see stress.h): random
 * sync, async, nested, sliced, notified, abort and agent operations, each
 * checked against what a holder may see.
 *
 * Part of the C test program; build and run with
 * csrc/tests/run.sh [plain|thread|address] [filter].
 */
#define _POSIX_C_SOURCE 200809L

#include "stress.h"

#include <poll.h>
#include <stdlib.h>

#define VIOLATION(a, ...)                                                  \
    do {                                                                   \
        if (atomic_fetch_add((a)->violations, 1) < 20)                     \
            H_FAIL(__VA_ARGS__);                                           \
    } while (0)

/* errors a domain that is removed or shut down produces, in chaos mode */
static bool stress_chaos_error(stress_arg *a)
{
    int code = mj_last_error_code();
    return a->chaos && (code == MJ_ERR_NO_DOMAIN ||
                        (code == MJ_ERR_OPERATION_ABORTED &&
                         strcmp(mj_last_error_message(),
                                "job wait cancelled: shutdown") == 0));
}

/* a failed begin: which errors are legitimate under contention */
static void stress_failed(stress_arg *a, const char *what)
{
    int code = mj_last_error_code();
    const char *msg = mj_last_error_message();
    if (code == MJ_ERR_OPERATION_TIMEOUT &&
        strncmp(msg, "cannot acquire state change lock", 32) == 0) {
        a->n_fail_ok++;
        return;
    }
    /* a second migration is refused at once (qemuMigrationJobIsAllowed) */
    if (code == MJ_ERR_OPERATION_INVALID &&
        strstr(msg, "another migration job is already running") == msg) {
        a->n_fail_ok++;
        return;
    }
    if (a->limited && code == MJ_ERR_OPERATION_FAILED &&
        strstr(msg, "due to max_queued limit") != NULL) {
        a->n_fail_ok++;
        return;
    }
    if (stress_chaos_error(a)) {
        a->n_fail_ok++;
        return;
    }
    VIOLATION(a, "stress thread %d: %s failed unexpectedly: %d \"%s\"",
              a->id, what, code, msg);
}

/* we hold sync job k (not nested): check the invariants */
static void stress_sync_held(stress_arg *a, int k, bool check_owner)
{
    if (atomic_fetch_add(a->holders, 1) != 0)
        VIOLATION(a, "two sync jobs at once (%s)", mj_job_to_string(k));
    int act = mj_domain_active_job(a->d);
    if (act != k)
        VIOLATION(a, "holding %s but active_job is %d", mj_job_to_string(k), act);
    if (check_owner && mj_domain_owner_thread(a->d) != self_id())
        VIOLATION(a, "holding %s but not the owner thread", mj_job_to_string(k));
    /* read the mask first: an async job cannot start while we hold the
     * slot, so one still active at the second read was active at the first */
    uint64_t m = mj_domain_mask(a->d);
    int as = mj_domain_async_job(a->d);
    if (as != MJ_ASYNC_JOB_NONE && !(m & MJ_JOB_MASK(k)))
        VIOLATION(a, "%s granted during async job %s with mask 0x%llx",
                  mj_job_to_string(k), async_job_label(as), (unsigned long long)m);
    if (mj_domain_jobs_queued(a->d) < 1)
        VIOLATION(a, "holding a job but jobs_queued < 1");
    if (mj_domain_refs(a->d) < (a->chaos ? 1 : 2))
        VIOLATION(a, "holding a job but refs is %d", mj_domain_refs(a->d));
    atomic_fetch_sub(a->holders, 1);
}

static const int stress_sync_kinds[] = {
    MJ_JOB_QUERY, MJ_JOB_DESTROY, MJ_JOB_SUSPEND, MJ_JOB_MODIFY,
    MJ_JOB_ABORT, MJ_JOB_MIGRATION_OP
};

static void stress_end_sync(stress_arg *a, int k)
{
    int r = mj_end_job(a->d);
    if (r < (a->chaos ? 0 : 1))
        VIOLATION(a, "end_job of %s returned %d: %d \"%s\"",
                  mj_job_to_string(k), r, mj_last_error_code(),
                  mj_last_error_message());
}

/* an agent job (maybe nowait) or a nowait sync job: one agent holder at
 * a time, the state agreeing with the grant, and a busy nowait changes
 * nothing it could see */
static void stress_agent(stress_arg *a, unsigned *seed)
{
    int k = 1 + rand_r(seed) % 2;
    bool nowait = rand_r(seed) % 3 == 0;
    int rc = nowait ? mj_begin_agent_job_nowait(a->d, k, "stress-agent")
                    : mj_begin_agent_job(a->d, k, "stress-agent",
                                         0.01 * (rand_r(seed) % 10), -1);

    if (rc == MJ_BUSY) {
        a->n_nowait_busy++;
        return;
    }
    if (rc != 0) {
        stress_failed(a, nowait ? "begin_agent_job_nowait" : "begin_agent_job");
        return;
    }
    a->n_agent++;
    if (atomic_fetch_add(a->agent_holders, 1) != 0)
        VIOLATION(a, "two agent jobs at once");
    if (mj_domain_agent_job(a->d) != k)
        VIOLATION(a, "holding agent job %d but agent_job is %d", k,
                  mj_domain_agent_job(a->d));
    if (mj_domain_agent_owner_thread(a->d) != self_id())
        VIOLATION(a, "holding agent job %d but not its owner thread", k);
    if (rand_r(seed) % 4 == 0)
        sleep_s(0.0001);
    /* a sync job meanwhile, without waiting: the slots are independent */
    if (rand_r(seed) % 2 == 0) {
        int sk = stress_sync_kinds[rand_r(seed) % 6];
        int src = mj_begin_job_nowait(a->d, sk, "stress-nowait");
        if (src == 0) {
            stress_sync_held(a, sk, true);
            stress_end_sync(a, sk);
        } else if (src == MJ_BUSY) {
            a->n_nowait_busy++;
        } else {
            stress_failed(a, "begin_job_nowait");
        }
    }
    atomic_fetch_sub(a->agent_holders, 1);
    rc = mj_end_agent_job(a->d);
    if (rc < (a->chaos ? 0 : 1))
        VIOLATION(a, "end_agent_job returned %d: %d \"%s\"", rc,
                  mj_last_error_code(), mj_last_error_message());
}

static void stress_async(stress_arg *a, unsigned *seed)
{
    int pick = rand_r(seed) % 5;
    int k;
    int rc;
    uint64_t want_mask;
    if (pick < 3) {
        static const int mk[] = { MJ_ASYNC_JOB_MIGRATION_OUT,
                                  MJ_ASYNC_JOB_MIGRATION_IN, MJ_ASYNC_JOB_SAVE };
        k = mk[pick];
        rc = mj_migration_job_start(a->d, k, "stress-mig", 0.3, -1, false, 0);
        want_mask = k == MJ_ASYNC_JOB_MIGRATION_IN ? MJ_MIGRATION_IN_JOB_MASK
                                                    : MJ_MIGRATION_OUT_JOB_MASK;
    } else {
        k = pick == 3 ? MJ_ASYNC_JOB_SAVE : MJ_ASYNC_JOB_DUMP;
        rc = mj_begin_async_job(a->d, k, "stress-async", 0.3, -1);
        want_mask = MJ_DEFAULT_JOB_MASK;
    }
    if (rc != 0) {
        stress_failed(a, "async begin");
        return;
    }
    a->n_async++;
    if (mj_domain_async_job(a->d) != k)
        VIOLATION(a, "async job is not %s", async_job_label(k));
    if (mj_domain_async_owner_thread(a->d) != self_id())
        VIOLATION(a, "async owner is not us");
    uint64_t mask = mj_domain_mask(a->d);
    if (mask != want_mask)
        VIOLATION(a, "async %s mask 0x%llx, expected 0x%llx", async_job_label(k),
                  (unsigned long long)mask, (unsigned long long)want_mask);
    bool migration = k == MJ_ASYNC_JOB_MIGRATION_OUT || k == MJ_ASYNC_JOB_MIGRATION_IN;
    if (migration &&
        mj_migration_job_set_phase(a->d, k == MJ_ASYNC_JOB_MIGRATION_OUT
                                   ? MJ_PHASE_BEGIN3 : MJ_PHASE_PREPARE,
                                   "p1") != MJ_PHASE_SET)
        VIOLATION(a, "set_phase refused a first phase");
    int rounds = 1 + rand_r(seed) % 4;
    for (int r = 0; r < rounds; r++) {
        int act = mj_domain_active_job(a->d);
        if (act != MJ_JOB_NONE && !(mask & MJ_JOB_MASK(act)))
            VIOLATION(a, "%s runs during %s with mask 0x%llx",
                      mj_job_to_string(act), async_job_label(k),
                      (unsigned long long)mask);
        if (mj_begin_nested_job(a->d, k, "stress-nested", 0.5, -1) != 0) {
            stress_failed(a, "nested begin");
            continue;
        }
        a->n_nested++;
        if (atomic_fetch_add(a->holders, 1) != 0)
            VIOLATION(a, "nested job while another sync job is held");
        if (mj_domain_active_job(a->d) != MJ_JOB_ASYNC_NESTED)
            VIOLATION(a, "nested job held but active_job differs");
        /* changing the mask is safe for our invariants while we hold the
         * slot: waiters must re-check it when granted */
        if (rand_r(seed) % 3 == 0) {
            uint64_t nm = (uint64_t)(rand_r(seed) % 64);
            mj_set_async_job_mask(a->d, nm);
            mask = nm | MJ_JOB_MASK(MJ_JOB_DESTROY);
            if (mj_domain_mask(a->d) != mask)
                VIOLATION(a, "set_async_job_mask did not stick");
        }
        atomic_fetch_sub(a->holders, 1);
        if (mj_end_nested_job(a->d) < 1)
            VIOLATION(a, "end_nested_job failed: %d \"%s\"",
                      mj_last_error_code(), mj_last_error_message());
        if (migration && r == 0 && rand_r(seed) % 2) {
            /* park and resume, as between two migration APIs */
            int left = mj_migration_job_continue(a->d);
            if (left == 0 && a->chaos)
                return;                /* removed meanwhile: it is gone */
            if (left < 1)
                VIOLATION(a, "continue returned %d", left);
            if (mj_domain_async_owner_thread(a->d) != 0)
                VIOLATION(a, "parked async job still has an owner thread");
            int ph = k == MJ_ASYNC_JOB_MIGRATION_OUT ? MJ_PHASE_PERFORM3
                                                    : MJ_PHASE_FINISH3;
            int sp = mj_migration_job_start_phase(a->d, ph, "p2");
            if (sp == -1 && stress_chaos_error(a))
                return;                /* died while parked */
            if (sp != MJ_PHASE_SET)
                VIOLATION(a, "start_phase returned %d", sp);
            if (mj_domain_async_owner_thread(a->d) != self_id())
                VIOLATION(a, "start_phase did not make us the owner");
        }
    }
    int ca = mj_check_abort(a->d);
    if (ca != 0) {
        char expect[128];
        snprintf(expect, sizeof(expect), "%s: canceled by client", async_job_label(k));
        if (mj_last_error_code() != MJ_ERR_OPERATION_ABORTED ||
            strcmp(mj_last_error_message(), expect) != 0)
            VIOLATION(a, "check_abort: %d \"%s\"", mj_last_error_code(),
                      mj_last_error_message());
    }
    int left = mj_end_async_job(a->d);
    if (left < (a->chaos ? 0 : 1))
        VIOLATION(a, "end_async_job returned %d: %d \"%s\"", left,
                  mj_last_error_code(), mj_last_error_message());
}

/* a waiter handed to this thread's notifier, served like an event loop */
static int stress_notified(stress_arg *a, unsigned *seed)
{
    mj_waiter *w = t_detach(a->notifier);
    if (!w) {
        VIOLATION(a, "pending_detach returned NULL");
        return -1;
    }
    a->n_notified++;
    int fd = mj_notifier_fd(a->notifier);
    bool cancel_early = rand_r(seed) % 4 == 0;
    for (int spins = 0;; spins++) {
        if (cancel_early && spins == 1) {
            t_cancel(w);
            /* anything it listed is gone with it */
            if (mj_notifier_take(a->notifier) != NULL)
                VIOLATION(a, "a cancelled waiter stayed listed");
            return -1;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        double left = mj_waiter_remaining(w);
        int ms = left > 0.005 ? 5 : (int)(left * 1000);
        (void)poll(&p, 1, ms);
        mj_waiter *t = mj_notifier_take(a->notifier);
        if (t && t != w)
            VIOLATION(a, "notifier listed a waiter it does not own");
        if (mj_notifier_take(a->notifier) != NULL)
            VIOLATION(a, "notifier listed one waiter twice");
        int rc = t_poll(w);
        if (rc == MJ_WAITING) {
            if (t == w)
                VIOLATION(a, "listed waiter still waiting");
            continue;
        }
        if (rc != 0)
            stress_failed(a, "notified waiter");
        return rc;
    }
}

static void stress_sliced(stress_arg *a, unsigned *seed)
{
    int k = stress_sync_kinds[rand_r(seed) % 6];
    int rc = mj_begin_job(a->d, k, "stress-sliced", 0.3, 0);
    if (rc == -1) {
        stress_failed(a, "sliced begin");
        return;
    }
    a->n_sliced++;
    if (rc == MJ_WAITING) {
        if (mj_pending_count() != 1) {
            VIOLATION(a, "MJ_WAITING but %d pending waiters", mj_pending_count());
            return;
        }
        int how = rand_r(seed) % 4;
        if (how == 0) {
            mj_pending_cancel();
            return;
        }
        if (how == 1) {
            sleep_s(0.0001 * (rand_r(seed) % 20));
            mj_pending_cancel();    /* granted or not: nothing held after */
            return;
        }
        if (how == 2) {
            if (stress_notified(a, seed) != 0)
                return;
        } else {
            do
                rc = mj_pending_wait(0.01);
            while (rc == MJ_WAITING);
            if (rc != 0) {
                stress_failed(a, "pending_wait");
                return;
            }
        }
        if (mj_pending_count() != 0)
            VIOLATION(a, "a resolved waiter is still pending");
    } else if (rc != 0) {
        VIOLATION(a, "sliced begin returned %d", rc);
        return;
    }
    stress_sync_held(a, k, true);
    stress_end_sync(a, k);
}

void *stress_main(void *arg)
{
    stress_arg *a = arg;
    unsigned seed = (unsigned)a->id * 2654435761u + 12345u;
    a->notifier = mj_notifier_new();
    if (!a->notifier) {
        VIOLATION(a, "mj_notifier_new failed");
        return NULL;
    }
    while (now_s() < a->until) {
        int di = a->nd > 1 ? rand_r(&seed) % a->nd : 0;
        a->d = a->ds[di];
        a->holders = a->holders_of[di];
        a->agent_holders = a->agent_holders_of[di];
        int op = rand_r(&seed) % 100;
        if (op < 40) {
            int k = stress_sync_kinds[rand_r(&seed) % 6];
            if (mj_begin_job(a->d, k, "stress-sync",
                             0.05 + 0.01 * (rand_r(&seed) % 20), -1) != 0) {
                stress_failed(a, "begin_job");
                continue;
            }
            a->n_sync++;
            stress_sync_held(a, k, true);
            if (rand_r(&seed) % 4 == 0)
                sleep_s(0.0001);
            stress_sync_held(a, k, true);
            stress_end_sync(a, k);
        } else if (op < 52) {
            stress_async(a, &seed);
        } else if (op < 70) {
            stress_sliced(a, &seed);
        } else if (op < 80) {
            int rc = mj_abort_job(a->d, "stress-abort", 0.05, -1);
            if (rc == 0) {
                a->n_abort++;
            } else {
                int code = mj_last_error_code();
                if (code == MJ_ERR_OPERATION_INVALID)
                    a->n_fail_ok++;
                else
                    stress_failed(a, "abort_job");
            }
        } else if (op < 90) {
            stress_agent(a, &seed);
        } else {
            int r = mj_domain_ref(a->d);
            if (r < 0 && stress_chaos_error(a))
                continue;
            if (r < 2)
                VIOLATION(a, "ref returned %d", r);
            (void)mj_domain_owner_api(a->d);
            (void)mj_domain_async_owner_api(a->d);
            (void)mj_domain_job_elapsed(a->d);
            (void)mj_domain_job_info_type(a->d);
            (void)mj_domain_phase(a->d);
            (void)mj_domain_abort_requested(a->d);
            (void)mj_migration_job_is_active(a->d, MJ_ASYNC_JOB_MIGRATION_OUT);
            if (mj_check_migration_job(a->d, MJ_ASYNC_JOB_MIGRATION_IN) != 0 &&
                mj_last_error_code() != MJ_ERR_OPERATION_INVALID)
                VIOLATION(a, "check_migration_job: unexpected error %d",
                          mj_last_error_code());
            r = mj_domain_unref(a->d);
            if (r < (a->chaos ? 0 : 1))
                VIOLATION(a, "unref returned %d", r);
        }
    }
    if (mj_pending_count() != 0)
        VIOLATION(a, "thread %d ends with %d pending waiters", a->id,
                  mj_pending_count());
    if (mj_notifier_take(a->notifier) != NULL)
        VIOLATION(a, "thread %d: notifier still lists a waiter", a->id);
    mj_notifier_free(a->notifier);
    return NULL;
}
