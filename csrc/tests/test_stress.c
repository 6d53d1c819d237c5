/*
 * test_stress.c: races, and the stress and chaos runs of random
 * operations over many threads
 *
 * Part of the C test program; build and run with
 * csrc/tests/run.sh [plain|thread|address] [filter].
 */
#define _POSIX_C_SOURCE 200809L

#include "helpers.h"

#include <poll.h>
#include <stdlib.h>

/* ======================================================================== */
/* races: async/sync, nested jobs between queries                           */

/* async / sync race: async holders never coexist with a MODIFY or SUSPEND
 * (not in the default mask), sync holders never overlap */
typedef struct {
    mj_domain *d;
    int id, iters;
    bool async_side;
    atomic_int *failures;
    pthread_barrier_t *gate;
} stress_race_arg;

static void *stress_race_main(void *arg)
{
    stress_race_arg *a = arg;
    unsigned seed = (unsigned)a->id * 31u + 7;
    pthread_barrier_wait(a->gate);
    for (int i = 0; i < a->iters; i++) {
        if (a->async_side) {
            int k = (i + a->id) % 2 ? MJ_ASYNC_JOB_SAVE : MJ_ASYNC_JOB_DUMP;
            if (mj_begin_async_job(a->d, k, "race-async", 20.0, -1) != 0) {
                H_FAIL("async begin: %d \"%s\"", mj_last_error_code(),
                       mj_last_error_message());
                atomic_fetch_add(a->failures, 1);
                continue;
            }
            if (mj_domain_async_job(a->d) != k ||
                mj_domain_async_owner_thread(a->d) != self_id())
                atomic_fetch_add(&g_overlap, 1);
            int act = mj_domain_active_job(a->d);
            if (act != MJ_JOB_NONE && !(MJ_DEFAULT_JOB_MASK & MJ_JOB_MASK(act)))
                atomic_fetch_add(&g_overlap, 1);
            int nested = rand_r(&seed) % 3;
            for (int n = 0; n < nested; n++) {
                if (mj_begin_nested_job(a->d, k, "race-nested", 20.0, -1) != 0) {
                    H_FAIL("nested begin: %d \"%s\"", mj_last_error_code(),
                           mj_last_error_message());
                    atomic_fetch_add(a->failures, 1);
                    continue;
                }
                exclusive_enter();
                if (mj_domain_active_job(a->d) != MJ_JOB_ASYNC_NESTED)
                    atomic_fetch_add(&g_overlap, 1);
                exclusive_leave();
                mj_end_nested_job(a->d);
            }
            if (mj_end_async_job(a->d) < 1)
                atomic_fetch_add(a->failures, 1);
        } else {
            static const int kinds[] = { MJ_JOB_QUERY, MJ_JOB_MODIFY,
                                         MJ_JOB_SUSPEND, MJ_JOB_QUERY };
            int k = kinds[rand_r(&seed) % 4];
            if (mj_begin_job(a->d, k, "race-sync", 20.0, -1) != 0) {
                H_FAIL("sync begin %s: %d \"%s\"", mj_job_to_string(k),
                       mj_last_error_code(), mj_last_error_message());
                atomic_fetch_add(a->failures, 1);
                continue;
            }
            exclusive_enter();
            if (k != MJ_JOB_QUERY && mj_domain_async_job(a->d) != MJ_ASYNC_JOB_NONE)
                atomic_fetch_add(&g_overlap, 1);
            exclusive_leave();
            if (mj_end_job(a->d) < 1)
                atomic_fetch_add(a->failures, 1);
        }
    }
    return NULL;
}

void test_async_sync_race(void)
{
    enum { T = 10, ITERS = 150 };
    mj_domain *d = fresh("vm-race", 20.0, 0, false);
    pthread_t th[T];
    stress_race_arg args[T];
    atomic_int failures;
    pthread_barrier_t gate;
    pthread_barrier_init(&gate, NULL, T);
    atomic_init(&failures, 0);
    atomic_store(&g_overlap, 0);
    for (int i = 0; i < T; i++) {
        args[i] = (stress_race_arg){ d, i, ITERS, i < 4, &failures, &gate };
        pthread_create(&th[i], NULL, stress_race_main, &args[i]);
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&gate);
    CHECK_INT(atomic_load(&failures), 0);
    CHECK_INT(atomic_load(&g_overlap), 0);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_NONE);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    dispose(d);
}

typedef struct {
    mj_domain *d;
    atomic_int *stop;
    atomic_long *served;
    atomic_int *failures;
} stress_query_arg;

static void *stress_query_loop(void *arg)
{
    stress_query_arg *a = arg;
    while (!atomic_load(a->stop)) {
        if (mj_begin_job(a->d, MJ_JOB_QUERY, "stats", 20.0, -1) != 0) {
            H_FAIL("query begin: %d \"%s\"", mj_last_error_code(),
                   mj_last_error_message());
            atomic_fetch_add(a->failures, 1);
            continue;
        }
        exclusive_enter();
        if (mj_domain_async_job(a->d) != MJ_ASYNC_JOB_MIGRATION_OUT)
            atomic_fetch_add(&g_overlap, 1);
        exclusive_leave();
        mj_end_job(a->d);
        atomic_fetch_add(a->served, 1);
    }
    return NULL;
}

void test_nested_interleaving(void)
{
    enum { T = 4, NESTED = 300 };
    mj_domain *d = fresh("vm-il", 20.0, 0, false);
    atomic_int stop, failures;
    atomic_long served;
    atomic_init(&stop, 0);
    atomic_init(&failures, 0);
    atomic_init(&served, 0);
    atomic_store(&g_overlap, 0);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "perform3",
                                     1.0, -1, false, 0), 0);
    pthread_t th[T];
    stress_query_arg qa = { d, &stop, &served, &failures };
    for (int i = 0; i < T; i++)
        pthread_create(&th[i], NULL, stress_query_loop, &qa);
    while (atomic_load(&served) < 10)
        sleep_s(0.001);
    long before = atomic_load(&served);
    int nested_ok = 0;
    double limit = now_s() + 10.0;
    /* at least NESTED monitor calls, and on until queries got between
     * them (a 2-CPU box under ASan may not schedule them at first) */
    for (int i = 0; i < NESTED ||
         (atomic_load(&served) - before < 20 && now_s() < limit); i++) {
        if (mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "monitor",
                                20.0, -1) != 0) {
            H_FAIL("nested %d: %d \"%s\"", i, mj_last_error_code(),
                   mj_last_error_message());
            continue;
        }
        exclusive_enter();
        if (mj_domain_active_job(d) != MJ_JOB_ASYNC_NESTED ||
            mj_domain_owner_thread(d) != self_id())
            atomic_fetch_add(&g_overlap, 1);
        exclusive_leave();
        sleep_s(0.00002);
        mj_end_nested_job(d);
        nested_ok++;
    }
    long during = atomic_load(&served) - before;
    atomic_store(&stop, 1);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    CHECK(nested_ok >= NESTED);
    CHECKF(during >= 20, "no query interleaved with %d nested jobs", NESTED);
    CHECK_INT(atomic_load(&failures), 0);
    CHECK_INT(atomic_load(&g_overlap), 0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}


/* ======================================================================== */
/* stress                                                                   */

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

static void *stress_main(void *arg)
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

typedef struct {
    long n_sync, n_async, n_nested, n_sliced, n_notified, n_abort, n_fail;
    long n_agent, n_nowait_busy;
} stress_totals;

/* run `threads` threads of random operations over ds[0..nd) */
static stress_totals
stress_run_threads(mj_domain **ds, int nd, int threads, double seconds,
                   bool limited, bool chaos, atomic_long *violations,
                   void (*meanwhile)(mj_domain **, int, double))
{
    pthread_t *th = calloc((size_t)threads, sizeof(*th));
    stress_arg *args = calloc((size_t)threads, sizeof(*args));
    atomic_int holders[STRESS_MAX_DOMS];
    atomic_int agent_holders[STRESS_MAX_DOMS];
    stress_totals t = { 0 };
    double start = now_s();
    for (int i = 0; i < nd; i++) {
        atomic_init(&holders[i], 0);
        atomic_init(&agent_holders[i], 0);
    }
    for (int i = 0; i < threads; i++) {
        args[i].nd = nd;
        for (int j = 0; j < nd; j++) {
            args[i].ds[j] = ds[j];
            args[i].holders_of[j] = &holders[j];
            args[i].agent_holders_of[j] = &agent_holders[j];
        }
        args[i].id = i;
        args[i].until = start + seconds;
        args[i].limited = limited;
        args[i].chaos = chaos;
        args[i].violations = violations;
        pthread_create(&th[i], NULL, stress_main, &args[i]);
    }
    if (meanwhile)
        meanwhile(ds, nd, start);
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        t.n_sync += args[i].n_sync;
        t.n_async += args[i].n_async;
        t.n_nested += args[i].n_nested;
        t.n_sliced += args[i].n_sliced;
        t.n_notified += args[i].n_notified;
        t.n_abort += args[i].n_abort;
        t.n_fail += args[i].n_fail_ok;
        t.n_agent += args[i].n_agent;
        t.n_nowait_busy += args[i].n_nowait_busy;
    }
    free(th);
    free(args);
    return t;
}

static void stress_print_totals(const char *name, int threads, double seconds,
                                stress_totals t)
{
    fprintf(stderr, "    %s: %d threads %.1fs: %ld sync, %ld async, %ld nested, "
            "%ld sliced (%ld via notifier), %ld aborts, %ld agent, %ld nowait "
            "busy, %ld expected failures\n", name, threads, seconds, t.n_sync,
            t.n_async, t.n_nested, t.n_sliced, t.n_notified, t.n_abort,
            t.n_agent, t.n_nowait_busy, t.n_fail);
}

static void stress_check_at_rest(mj_domain *d)
{
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_NONE);
    CHECK_INT(mj_domain_agent_job(d), MJ_AGENT_JOB_NONE);
    CHECK_INT(mj_domain_owner_thread(d), 0);
    CHECK_INT(mj_domain_async_owner_thread(d), 0);
    CHECK(!mj_domain_abort_requested(d));
    CHECK_HEX(mj_domain_mask(d), MJ_DEFAULT_JOB_MASK);
}

static void stress_run(const char *name, int threads, double seconds,
                       unsigned int max_queued)
{
    mj_domain *d = fresh(name, 1.0, max_queued, false);
    atomic_long violations;
    atomic_init(&violations, 0);
    stress_totals t = stress_run_threads(&d, 1, threads, seconds,
                                         max_queued > 0, false, &violations,
                                         NULL);
    stress_print_totals(name, threads, seconds, t);
    CHECK_INT(atomic_load(&violations), 0);
    CHECK(t.n_sync > 0);
    CHECK(t.n_async > 0);
    CHECK(t.n_nested > 0);
    CHECK(t.n_sliced > 0);
    CHECK(t.n_agent > 0);
    /* everything given back */
    stress_check_at_rest(d);
    /* and the domain still works */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "after", 1.0, -1), 0);
    CHECK_INT(mj_end_job(d), 1);
    CHECK_INT(mj_domain_remove(d), 0);
    mj_domain_unpin(d);
}

void test_stress(void)
{
    stress_run("vm-stress", 32, 1.0, 0);
}

void test_stress_max_queued(void)
{
    stress_run("vm-stress-mq", 16, 0.5, 4);
}

/* while the threads run: remove ds[0] at 0.3 s, shut ds[1]'s waiters down
 * at 0.4 s, remove ds[2] at 0.6 s; ds[3] is left alone */
static void stress_chaos_meanwhile(mj_domain **ds, int nd, double start)
{
    (void)nd;
    sleep_s(start + 0.3 - now_s());
    CHECK(mj_domain_remove(ds[0]) >= 0);
    sleep_s(start + 0.4 - now_s());
    mj_domain_cancel_waiters(ds[1], "shutdown");
    sleep_s(start + 0.6 - now_s());
    CHECK(mj_domain_remove(ds[2]) >= 0);
}

void test_stress_lifecycle(void)
{
    enum { T = 16, ND = 4 };
    mj_domain *ds[ND];
    for (int i = 0; i < ND; i++) {
        char name[32];
        snprintf(name, sizeof(name), "vm-chaos%d", i);
        ds[i] = fresh(name, 1.0, 0, false);
        for (int t = 0; t < T; t++)
            mj_domain_pin(ds[i]);          /* the threads' pins */
    }
    atomic_long violations;
    atomic_init(&violations, 0);
    stress_totals t = stress_run_threads(ds, ND, T, 1.0, false, true,
                                         &violations, stress_chaos_meanwhile);
    stress_print_totals("vm-chaos", T, 1.0, t);
    CHECK_INT(atomic_load(&violations), 0);
    /* removed domains are dead once every job ended */
    CHECK_INT(mj_domain_refs(ds[0]), 0);
    CHECK(!mj_domain_alive(ds[0]));
    CHECK_INT(mj_domain_refs(ds[2]), 0);
    /* the shut-down one refuses begins but is otherwise at rest */
    stress_check_at_rest(ds[1]);
    CHECK_INT(mj_begin_job(ds[1], MJ_JOB_QUERY, "q", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    stress_check_at_rest(ds[3]);
    CHECK_INT(mj_domain_remove(ds[1]), 0);
    CHECK_INT(mj_domain_remove(ds[3]), 0);
    for (int i = 0; i < ND; i++)
        for (int k = 0; k <= T; k++)
            mj_domain_unpin(ds[i]);        /* the threads' and ours */
}

