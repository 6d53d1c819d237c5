/*
 * test_core.c: C-level tests of the migjob core (csrc/migjob.h), no Python.
 *
 * Build and run with csrc/tests/run.sh [plain|thread|address] [filter].
 * The binary takes an optional substring: only tests whose name contains
 * it run.  It prints one line per test and a final "N passed, M failed"
 * (N and M count individual checks) and exits non-zero on any failure.
 * A watchdog fails the run if a single test hangs.
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"
#include "migjob.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

atomic_long h_passed;
atomic_long h_failed;
const char *h_current_test = "?";

/* seconds a single test may take before the watchdog kills the run */
#define TEST_WATCHDOG_S 180
/* generous upper bound for "this should be quick" timings: sanitizers and
 * a loaded 2-CPU machine are slow */
#define SLACK 3.0

/* ------------------------------------------------------------------------ */
/* utilities                                                                */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts;
    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static uint64_t self_id(void)
{
    return (uint64_t)(uintptr_t)pthread_self();
}

static mj_domain *fresh(const char *name, double default_timeout,
                        unsigned int max_queued, bool strict)
{
    mj_domain *d = mj_domain_new(name, default_timeout, max_queued, strict);
    if (!d) {
        H_FAIL("mj_domain_new(\"%s\") returned NULL: %d %s", name,
               mj_last_error_code(), mj_last_error_message());
        fprintf(stderr, "cannot continue without a domain\n");
        exit(2);
    }
    return d;
}

/* Bring refs to 0 (whatever is still held) and drop the creator's pin, so
 * that ASan's leak checker sees every domain freed. */
static void dispose(mj_domain *d)
{
    if (mj_domain_alive(d)) {
        mj_domain_remove(d);
        int guard = 1000;
        while (mj_domain_refs(d) > 0 && guard-- > 0)
            mj_domain_unref(d);
    }
    mj_domain_unpin(d);
}

/* poll until refs == n (at most 10 s); true when reached */
static bool wait_refs(mj_domain *d, int n)
{
    double end = now_s() + 10.0;
    while (now_s() < end) {
        if (mj_domain_refs(d) == n)
            return true;
        sleep_s(0.0005);
    }
    return mj_domain_refs(d) == n;
}

static bool wait_flag(atomic_int *flag, double limit)
{
    double end = now_s() + limit;
    while (!atomic_load(flag)) {
        if (now_s() > end)
            return false;
        sleep_s(0.0005);
    }
    return true;
}

static const char *job_label(int async_job)
{
    const char *s = mj_async_job_to_string(async_job);
    return s ? s : "?";
}

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

static atomic_long g_seq;

static void *worker_main(void *arg)
{
    worker *w = arg;
    double t0 = now_s();
    int rc = -1;
    switch (w->op) {
    case W_SYNC:
        rc = mj_begin_job(w->d, w->kind, w->api, w->timeout, -1);
        break;
    case W_ASYNC:
        rc = mj_begin_async_job(w->d, w->kind, w->api, w->timeout, -1);
        break;
    case W_NESTED:
        rc = mj_begin_nested_job(w->d, w->kind, w->api, w->timeout, -1);
        break;
    case W_MIGSTART:
        rc = mj_migration_job_start(w->d, w->kind, w->api, w->timeout, -1,
                                    false, 0);
        break;
    case W_ABORT:
        rc = mj_abort_job(w->d, w->api, w->timeout, -1);
        break;
    }
    w->waited = now_s() - t0;
    w->rc = rc;
    if (rc == 0) {
        w->seq = atomic_fetch_add(&g_seq, 1);
        if (w->op != W_ABORT) {
            w->seen_active = mj_domain_active_job(w->d);
            w->seen_async = mj_domain_async_job(w->d);
            w->seen_mask = mj_domain_mask(w->d);
            w->seen_owner = (w->op == W_ASYNC || w->op == W_MIGSTART)
                ? mj_domain_async_owner_thread(w->d)
                : mj_domain_owner_thread(w->d);
        }
        atomic_store(&w->acquired, 1);
        if (w->op != W_ABORT) {
            if (w->in_job)
                w->in_job(w);
            if (w->release)
                while (!atomic_load(w->release))
                    sleep_s(0.0005);
            sleep_s(w->hold);
            if (w->op == W_ASYNC || w->op == W_MIGSTART)
                w->end_rc = mj_end_async_job(w->d);
            else
                w->end_rc = mj_end_job(w->d);
        }
    } else {
        w->err = mj_last_error_code();
        snprintf(w->msg, sizeof(w->msg), "%s", mj_last_error_message());
    }
    atomic_store(&w->done, 1);
    return NULL;
}

static void worker_init(worker *w, mj_domain *d, int op, int kind,
                        const char *api, double timeout)
{
    memset(w, 0, sizeof(*w));
    w->d = d;
    w->op = op;
    w->kind = kind;
    w->api = api;
    w->timeout = timeout;
    w->rc = -99;
    w->seq = -1;
    atomic_init(&w->acquired, 0);
    atomic_init(&w->done, 0);
}

static void worker_start(worker *w)
{
    if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        exit(2);
    }
}

/* start w and wait until its begin is queued (refs reached `refs`) */
static void worker_start_queued(worker *w, int refs)
{
    worker_start(w);
    CHECKF(wait_refs(w->d, refs), "worker kind %d never queued: refs %d, "
           "wanted %d", w->kind, mj_domain_refs(w->d), refs);
}

static void worker_join(worker *w)
{
    pthread_join(w->th, NULL);
}

/* ======================================================================== */
/* enum tables                                                              */

static void test_enum_job(void)
{
    static const char *const names[] = {
        "none", "query", "destroy", "suspend", "modify", "abort",
        "migration operation", "none", "async nested"
    };
    CHECK_INT(MJ_JOB_LAST, 9);
    for (int i = 0; i < MJ_JOB_LAST; i++) {
        CHECK_STR(mj_job_to_string(i), names[i]);
        /* "none" is listed twice; the first match (NONE) wins */
        CHECK_INT(mj_job_from_string(names[i]), i == MJ_JOB_ASYNC ? 0 : i);
    }
    CHECK_STR(mj_job_to_string(MJ_JOB_LAST), NULL);
    CHECK_STR(mj_job_to_string(-1), NULL);
    CHECK_STR(mj_job_to_string(1000), NULL);
    CHECK_INT(mj_job_from_string(NULL), -1);
    CHECK_INT(mj_job_from_string(""), -1);
    CHECK_INT(mj_job_from_string("Query"), -1);
    CHECK_INT(mj_job_from_string("QUERY"), -1);
    CHECK_INT(mj_job_from_string("query "), -1);
    CHECK_INT(mj_job_from_string(" query"), -1);
    CHECK_INT(mj_job_from_string("migration_operation"), -1);
    CHECK_INT(mj_job_from_string("async"), -1);
}

static void test_enum_async_job(void)
{
    static const char *const names[] = {
        "none", "migration out", "migration in", "save", "dump"
    };
    CHECK_INT(MJ_ASYNC_JOB_LAST, 5);
    for (int i = 0; i < MJ_ASYNC_JOB_LAST; i++) {
        CHECK_STR(mj_async_job_to_string(i), names[i]);
        CHECK_INT(mj_async_job_from_string(names[i]), i);
    }
    CHECK_STR(mj_async_job_to_string(MJ_ASYNC_JOB_LAST), NULL);
    CHECK_STR(mj_async_job_to_string(-1), NULL);
    CHECK_INT(mj_async_job_from_string(NULL), -1);
    CHECK_INT(mj_async_job_from_string(""), -1);
    CHECK_INT(mj_async_job_from_string("snapshot"), -1);
    CHECK_INT(mj_async_job_from_string("Save"), -1);
    CHECK_INT(mj_async_job_from_string("migration_out"), -1);
}

static void test_enum_phase(void)
{
    static const char *const names[] = {
        "none", "perform2", "begin3", "perform3", "perform3_done",
        "confirm3_cancelled", "confirm3", "prepare", "finish2", "finish3"
    };
    CHECK_INT(MJ_PHASE_LAST, 10);
    for (int i = 0; i < MJ_PHASE_LAST; i++) {
        CHECK_STR(mj_phase_to_string(i), names[i]);
        CHECK_INT(mj_phase_from_string(names[i]), i);
    }
    /* emit perform2, accept the seed's preform2 */
    CHECK_STR(mj_phase_to_string(MJ_PHASE_PERFORM2), "perform2");
    CHECK_INT(mj_phase_from_string("preform2"), MJ_PHASE_PERFORM2);
    CHECK_INT(mj_phase_from_string("Preform2"), -1);
    CHECK_INT(mj_phase_from_string("PERFORM2"), -1);
    CHECK_INT(mj_phase_from_string("preform3"), -1);
    CHECK_INT(mj_phase_from_string("postcopy_failed"), -1);
    CHECK_INT(mj_phase_from_string("Begin3"), -1);
    CHECK_INT(mj_phase_from_string(NULL), -1);
    CHECK_INT(mj_phase_from_string(""), -1);
    CHECK_STR(mj_phase_to_string(MJ_PHASE_LAST), NULL);
    CHECK_STR(mj_phase_to_string(-1), NULL);
}

static void test_enum_job_info_type(void)
{
    CHECK_INT(MJ_JOB_INFO_LAST, 6);
    for (int i = 0; i < MJ_JOB_INFO_LAST; i++) {
        const char *s = mj_job_info_type_to_string(i);
        CHECKF(s != NULL, "job info type %d has no string", i);
        if (s)
            CHECK_INT(mj_job_info_type_from_string(s), i);
        for (int j = 0; j < i; j++) {
            const char *t = mj_job_info_type_to_string(j);
            CHECKF(!s || !t || strcmp(s, t) != 0,
                   "types %d and %d share the string \"%s\"", i, j, s);
        }
    }
    CHECK_STR(mj_job_info_type_to_string(MJ_JOB_INFO_NONE), "none");
    CHECK_STR(mj_job_info_type_to_string(MJ_JOB_INFO_LAST), NULL);
    CHECK_STR(mj_job_info_type_to_string(-1), NULL);
    CHECK_INT(mj_job_info_type_from_string(NULL), -1);
    CHECK_INT(mj_job_info_type_from_string("bogus"), -1);
}

static void test_async_job_phase_dispatch(void)
{
    /* migration jobs use the phase table */
    for (int p = 0; p < MJ_PHASE_LAST; p++) {
        CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_MIGRATION_OUT, p),
                  mj_phase_to_string(p));
        CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_MIGRATION_IN, p),
                  mj_phase_to_string(p));
    }
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_MIGRATION_OUT, 3),
              "perform3");
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_MIGRATION_IN, 7),
              "prepare");
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_MIGRATION_OUT,
                                           MJ_PHASE_LAST), NULL);
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_MIGRATION_IN, -1),
              NULL);
    /* every other async job only knows "none", whatever the phase */
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_NONE, 0), "none");
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_NONE, 5), "none");
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_SAVE, 3), "none");
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_DUMP, 99), "none");
    CHECK_STR(mj_async_job_phase_to_string(MJ_ASYNC_JOB_SAVE, -1), "none");

    /* from string: NULL -> 0, unknown -> -1 */
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_OUT, NULL), 0);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_OUT, "none"), 0);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_OUT, "perform3"), 3);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_OUT, "preform2"), 1);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_IN, "preform2"), 1);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_IN, "finish3"), 9);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_IN, "Finish3"), -1);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_OUT, "bogus"), -1);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_MIGRATION_OUT, ""), -1);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_SAVE, "none"), 0);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_SAVE, NULL), 0);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_SAVE, "perform3"), -1);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_DUMP, "preform2"), -1);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_NONE, "none"), 0);
    CHECK_INT(mj_async_job_phase_from_string(MJ_ASYNC_JOB_NONE, "begin3"), -1);
}

static void test_constants(void)
{
    CHECK_INT(MJ_JOB_QUERY, 1);
    CHECK_INT(MJ_JOB_ABORT, 5);
    CHECK_INT(MJ_JOB_MIGRATION_OP, 6);
    CHECK_INT(MJ_JOB_ASYNC, 7);
    CHECK_INT(MJ_JOB_ASYNC_NESTED, 8);
    CHECK_INT(MJ_ASYNC_JOB_DUMP, 4);
    CHECK_INT(MJ_PHASE_PREPARE, 7);
    CHECK_INT(MJ_PHASE_FINISH3, 9);
    CHECK_INT(MJ_ERR_INTERNAL_ERROR, 1);
    CHECK_INT(MJ_ERR_OPERATION_FAILED, 9);
    CHECK_INT(MJ_ERR_INVALID_ARG, 8);
    CHECK_INT(MJ_ERR_NO_DOMAIN, 42);
    CHECK_INT(MJ_ERR_OPERATION_INVALID, 55);
    CHECK_INT(MJ_ERR_OPERATION_TIMEOUT, 68);
    CHECK_INT(MJ_ERR_OPERATION_ABORTED, 78);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_NONE), 0);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_QUERY), 0x01);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_DESTROY), 0x02);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_SUSPEND), 0x04);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_MODIFY), 0x08);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_ABORT), 0x10);
    CHECK_HEX(MJ_JOB_MASK(MJ_JOB_MIGRATION_OP), 0x20);
    CHECK_HEX(MJ_DEFAULT_JOB_MASK, MJ_JOB_MASK(MJ_JOB_QUERY) |
              MJ_JOB_MASK(MJ_JOB_DESTROY) | MJ_JOB_MASK(MJ_JOB_ABORT));
    CHECK_HEX(MJ_MIGRATION_OUT_JOB_MASK, MJ_DEFAULT_JOB_MASK |
              MJ_JOB_MASK(MJ_JOB_SUSPEND) | MJ_JOB_MASK(MJ_JOB_MIGRATION_OP));
    CHECK_HEX(MJ_MIGRATION_OUT_JOB_MASK, 0x37);
    mj_noop();
    CHECK(1);
}

/* ======================================================================== */
/* errors                                                                   */

static void *fresh_thread_error(void *arg)
{
    int *out = arg;
    out[0] = mj_last_error_code();
    out[1] = strcmp(mj_last_error_message(), "") == 0;
    return NULL;
}

static void *set_error_in_thread(void *arg)
{
    mj_domain *d = arg;
    mj_end_job(d);      /* fails: no job; sets this thread's error only */
    return NULL;
}

static void test_error_basics(void)
{
    int out[2] = { -1, -1 };
    pthread_t th;
    pthread_create(&th, NULL, fresh_thread_error, out);
    pthread_join(th, NULL);
    CHECK_INT(out[0], MJ_ERR_OK);
    CHECK_INT(out[1], 1);

    CHECK_STR(mj_error_prefix(MJ_ERR_OPERATION_INVALID),
              "Requested operation is not valid");
    CHECK_STR(mj_error_prefix(MJ_ERR_OPERATION_TIMEOUT),
              "Timed out during operation");
    CHECK_STR(mj_error_prefix(MJ_ERR_OPERATION_FAILED), "operation failed");
    CHECK_STR(mj_error_prefix(MJ_ERR_INTERNAL_ERROR), "internal error");
    CHECK_STR(mj_error_prefix(MJ_ERR_NO_DOMAIN), "Domain not found");
    CHECK_STR(mj_error_prefix(MJ_ERR_OPERATION_ABORTED), "operation aborted");

    mj_domain *d = fresh("vm-err", 1.0, 0, false);
    mj_reset_last_error();
    CHECK_ERR(MJ_ERR_OK, "");

    /* an error in another thread is not ours */
    pthread_create(&th, NULL, set_error_in_thread, d);
    pthread_join(th, NULL);
    CHECK_ERR(MJ_ERR_OK, "");

    /* an error stays until the next failure or reset: success never
     * touches it */
    CHECK_INT(mj_end_job(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), 0);
    CHECK_INT(mj_end_job(d), 1);
    CHECK_INT(mj_domain_ref(d), 2);
    CHECK_INT(mj_domain_unref(d), 1);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "b", 1.0,
                                     -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, NULL),
              MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");

    /* a later failure replaces it */
    CHECK_INT(mj_begin_job(d, MJ_JOB_NONE, NULL, 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");
    mj_reset_last_error();
    CHECK_ERR(MJ_ERR_OK, "");
    CHECK_STR(mj_domain_name(d), "vm-err");
    dispose(d);
}

static void test_error_invalid_job(void)
{
    mj_domain *d = fresh("vm-inv", 1.0, 0, false);
    /* kinds inside the enum that are not sync jobs: libvirt's text */
    static const int bad_sync[] = { MJ_JOB_NONE, MJ_JOB_ASYNC,
                                    MJ_JOB_ASYNC_NESTED };
    for (size_t i = 0; i < sizeof(bad_sync) / sizeof(bad_sync[0]); i++) {
        mj_reset_last_error();
        CHECK_INT(mj_begin_job(d, bad_sync[i], "x", 1.0, -1), -1);
        CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");
        CHECK_INT(mj_begin_job(d, bad_sync[i], "x", 1.0, 0), -1);
        CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");
    }
    mj_reset_last_error();
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_NONE, "x", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_NONE, "x", 1.0, -1,
                                     false, 0), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");

    /* numbers outside the enums: INVALID_ARG */
    static const int out_sync[] = { MJ_JOB_LAST, -1, 100, INT32_MIN };
    for (size_t i = 0; i < sizeof(out_sync) / sizeof(out_sync[0]); i++) {
        mj_reset_last_error();
        CHECK_INT(mj_begin_job(d, out_sync[i], "x", 1.0, -1), -1);
        CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
        CHECK(strlen(mj_last_error_message()) > 0);
    }
    static const int out_async[] = { MJ_ASYNC_JOB_LAST, -1, 1000 };
    for (size_t i = 0; i < sizeof(out_async) / sizeof(out_async[0]); i++) {
        mj_reset_last_error();
        CHECK_INT(mj_begin_async_job(d, out_async[i], "x", 1.0, -1), -1);
        CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
        mj_reset_last_error();
        CHECK_INT(mj_migration_job_start(d, out_async[i], "x", 1.0, -1,
                                         false, 0), -1);
        CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
        mj_reset_last_error();
        CHECK_INT(mj_begin_nested_job(d, out_async[i], "x", 1.0, -1), -1);
        CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
        mj_reset_last_error();
        CHECK_INT(mj_check_migration_job(d, out_async[i]), -1);
        CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
        CHECK(!mj_migration_job_is_active(d, out_async[i]));
    }
    /* a NaN timeout or wait_for */
    mj_reset_last_error();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "x", 0.0 / 0.0, -1), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    mj_reset_last_error();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "x", 1.0, 0.0 / 0.0), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    /* an API name longer than MJ_NAME_MAX */
    char *longname = malloc(MJ_NAME_MAX + 2);
    memset(longname, 'a', MJ_NAME_MAX + 1);
    longname[MJ_NAME_MAX + 1] = '\0';
    mj_reset_last_error();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, longname, 1.0, -1), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    mj_reset_last_error();
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, longname, 1.0, -1), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    /* a domain name longer than MJ_NAME_MAX, or none */
    mj_reset_last_error();
    CHECK(mj_domain_new(longname, 1.0, 0, false) == NULL);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    mj_reset_last_error();
    CHECK(mj_domain_new(NULL, 1.0, 0, false) == NULL);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    /* exactly MJ_NAME_MAX bytes is fine */
    longname[MJ_NAME_MAX] = '\0';
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, longname, 1.0, -1), 0);
    CHECK_STR(mj_domain_owner_api(d), longname);
    CHECK_INT(mj_end_job(d), 1);
    free(longname);
    /* phases outside the enum */
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_LAST, NULL), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    CHECK_INT(mj_migration_job_start_phase(d, -1, NULL), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);

    /* nothing changed */
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_NONE);
    CHECK_STR(mj_domain_owner_api(d), NULL);
    CHECK_INT(mj_pending_count(), 0);

    /* an invalid kind is rejected even while the slot is busy, at once */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "m", 1.0, -1), 0);
    double t0 = now_s();
    CHECK_INT(mj_begin_job(d, MJ_JOB_ASYNC, "x", 5.0, -1), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");
    CHECK_RANGE(now_s() - t0, 0.0, 1.0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_end_job(d), 1);
    dispose(d);
}

static void test_error_end_without_job(void)
{
    mj_domain *d = fresh("vm-end", 1.0, 0, false);
    CHECK_INT(mj_end_job(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    mj_reset_last_error();
    CHECK_INT(mj_end_nested_job(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no nested job is active on the domain");
    mj_reset_last_error();
    CHECK_INT(mj_end_async_job(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_finish(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);

    /* a plain sync job is not a nested one; nothing changes */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), 0);
    mj_reset_last_error();
    CHECK_INT(mj_end_nested_job(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no nested job is active on the domain");
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_QUERY);
    CHECK_INT(mj_domain_refs(d), 2);
    /* a sync job is not an async job */
    mj_reset_last_error();
    CHECK_INT(mj_end_async_job(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_QUERY);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_end_job(d), 1);

    /* an async job without a sync job: end_job has nothing to end */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    mj_reset_last_error();
    CHECK_INT(mj_end_job(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_SAVE);
    CHECK_INT(mj_domain_refs(d), 2);
    /* end_job also ends a nested job */
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_SAVE, "n", 1.0, -1), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_ASYNC_NESTED);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_end_job(d), 2);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_SAVE);
    CHECK_INT(mj_end_async_job(d), 1);
    dispose(d);
}

static void test_error_nested_wrong_async(void)
{
    mj_domain *d = fresh("vm-nest", 1.0, 0, false);
    /* no async job at all: active kind is 0 */
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "n", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "unexpected async job 1 type expected 0");
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);

    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    mj_reset_last_error();
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "n", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "unexpected async job 1 type expected 3");
    mj_reset_last_error();
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_DUMP, "n", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "unexpected async job 4 type expected 3");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    /* the right kind works */
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_SAVE, "n", 1.0, -1), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_ASYNC_NESTED);
    CHECK_INT(mj_domain_owner_thread(d), self_id());
    CHECK_STR(mj_domain_owner_api(d), "n");
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    CHECK_INT(mj_end_nested_job(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_end_async_job(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);
}

static void test_error_check_migration(void)
{
    mj_domain *d = fresh("vm1", 1.0, 0, false);
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_OUT), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "domain 'vm1' is not being migrated");
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_IN), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID,
              "domain 'vm1' is not processing incoming migration");
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_SAVE), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "domain 'vm1' is not being migrated");
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_DUMP), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "domain 'vm1' is not being migrated");

    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "begin3",
                                     1.0, -1, false, 0), 0);
    mj_reset_last_error();
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_OUT), 0);
    CHECK_ERR(MJ_ERR_OK, "");
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_IN), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID,
              "domain 'vm1' is not processing incoming migration");
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_SAVE), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "domain 'vm1' is not being migrated");

    /* is_active compares exactly and never sets an error */
    mj_reset_last_error();
    CHECK(mj_migration_job_is_active(d, MJ_ASYNC_JOB_MIGRATION_OUT));
    CHECK(!mj_migration_job_is_active(d, MJ_ASYNC_JOB_MIGRATION_IN));
    CHECK(!mj_migration_job_is_active(d, MJ_ASYNC_JOB_SAVE));
    CHECK(!mj_migration_job_is_active(d, MJ_ASYNC_JOB_NONE));
    CHECK_ERR(MJ_ERR_OK, "");
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK(!mj_migration_job_is_active(d, MJ_ASYNC_JOB_MIGRATION_OUT));
    CHECK_ERR(MJ_ERR_OK, "");

    /* SAVE matches SAVE */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    CHECK(mj_migration_job_is_active(d, MJ_ASYNC_JOB_SAVE));
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_SAVE), 0);
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_DUMP), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "domain 'vm1' is not being migrated");
    CHECK_INT(mj_end_async_job(d), 1);
    dispose(d);
}

static void test_phases(void)
{
    mj_domain *d = fresh("vm-ph", 1.0, 0, false);
    /* no async job: silent no-op */
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, "x"), MJ_PHASE_NO_JOB);
    CHECK_ERR(MJ_ERR_OK, "");
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_NONE);
    CHECK_STR(mj_domain_async_owner_api(d), NULL);
    CHECK_INT(mj_domain_refs(d), 1);

    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "begin3",
                                     1.0, -1, false, 0), 0);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_NONE);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_BEGIN3);
    /* equal is accepted */
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM3, "perform3"),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_PERFORM3);
    CHECK_STR(mj_domain_async_owner_api(d), "perform3");
    /* backwards: refused, logged as the last error, job goes on */
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, NULL),
              MJ_PHASE_BACKWARDS);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR,
              "migration protocol going backwards perform3 => begin3");
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_PERFORM3);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_MIGRATION_OUT);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_NONE, NULL),
              MJ_PHASE_BACKWARDS);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR,
              "migration protocol going backwards perform3 => none");
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_CONFIRM3, NULL), MJ_PHASE_SET);
    /* CONFIRM3_CANCELLED (5) < CONFIRM3 (6) */
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_CONFIRM3_CANCELLED, NULL),
              MJ_PHASE_BACKWARDS);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR,
              "migration protocol going backwards confirm3 => confirm3_cancelled");
    /* plain integer order: destination phases sort after source ones */
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PREPARE, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_PREPARE);
    /* invalid phases */
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_LAST, NULL), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    CHECK_INT(mj_migration_job_set_phase(d, -1, NULL), -1);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_PREPARE);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);
    /* ending the async job resets the phase */
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_NONE);
    CHECK_STR(mj_domain_async_owner_api(d), NULL);
    dispose(d);

    /* strict: backwards is an error */
    d = fresh("vm-strict", 1.0, 0, true);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN, "prepare3",
                                     1.0, -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_FINISH3, NULL), MJ_PHASE_SET);
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PREPARE, NULL), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR,
              "migration protocol going backwards finish3 => prepare");
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_FINISH3);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_FINISH3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}

/* ======================================================================== */
/* refcounts (libvirt-jobs.md §6.2)                                         */

static void test_refs_basic(void)
{
    mj_domain *d = fresh("vm-ref", 1.0, 0, false);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK(mj_domain_alive(d));
    CHECK_INT(mj_domain_ref(d), 2);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_unref(d), 1);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), 0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_end_job(d), 1);
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_DUMP, "dump", 1.0, -1), 0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_DUMP, "n", 1.0, -1), 0);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_end_nested_job(d), 2);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), 0);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_end_job(d), 2);
    CHECK_INT(mj_end_async_job(d), 1);
    CHECK_INT(mj_domain_refs(d), 1);
    dispose(d);
}

/* Source v3 with change protection: Begin3 1->2->1, Perform3 1->2 [nested
 * +1/-1] ->1, Confirm3 1->2->1; a transient domain is then removed 1->0. */
static void test_refs_v3_change_protection(void)
{
    mj_domain *d = fresh("vm-src", 1.0, 0, false);
    /* Begin3 */
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                     "begin3", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_HEX(mj_domain_mask(d), 0x37);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_UNBOUNDED);
    CHECK_INT(mj_domain_async_owner_thread(d), self_id());
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_continue(d), 1);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_async_owner_thread(d), 0);
    CHECK_STR(mj_domain_async_owner_api(d), "begin3");
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_MIGRATION_OUT);
    CHECK_INT(mj_domain_jobs_queued(d), 1);     /* parked async counts */

    /* Perform3 */
    CHECK(mj_migration_job_is_active(d, MJ_ASYNC_JOB_MIGRATION_OUT));
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_OUT), 0);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_PERFORM3, "perform3"),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_async_owner_thread(d), self_id());
    CHECK_STR(mj_domain_async_owner_api(d), "perform3");
    for (int i = 0; i < 3; i++) {
        CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                      "monitor", 1.0, -1), 0);
        CHECK_INT(mj_domain_refs(d), 3);
        CHECK_INT(mj_end_nested_job(d), 2);
    }
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM3_DONE, NULL),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_continue(d), 1);

    /* Confirm3 */
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_OUT), 0);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_CONFIRM3, "confirm3"),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_CONFIRM3);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_NONE);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_NONE);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_NONE);
    CHECK_INT(mj_domain_async_owner_thread(d), 0);
    CHECK_STR(mj_domain_async_owner_api(d), NULL);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_HEX(mj_domain_mask(d), MJ_DEFAULT_JOB_MASK);
    /* transient: removed after success, 1 -> 0 */
    CHECK_INT(mj_domain_remove(d), 0);
    CHECK(!mj_domain_alive(d));
    CHECK_INT(mj_domain_refs(d), 0);
    mj_domain_unpin(d);
}

/* Destination: Prepare 1->2->1; Finish3 1->2->1. */
static void test_refs_destination(void)
{
    mj_domain *d = fresh("vm-dst", 1.0, 0, false);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN,
                                     "prepare3", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_HEX(mj_domain_mask(d), 0x02);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PREPARE, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_continue(d), 1);
    CHECK(!mj_migration_job_is_active(d, MJ_ASYNC_JOB_MIGRATION_OUT));
    CHECK(mj_migration_job_is_active(d, MJ_ASYNC_JOB_MIGRATION_IN));
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_FINISH3, "finish3"),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_domain_refs(d), 1);
    /* v2 destination: Prepare2 / Finish2 */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN,
                                     "prepare2", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PREPARE, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_continue(d), 1);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_FINISH2, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}

/* v3 without change protection: Begin3 is a sync MODIFY 1->2->1; Perform3
 * calls Start and StartPhase but only Continue: 1->3->2; Confirm3 2->3->2. */
static void test_refs_v3_no_change_protection(void)
{
    mj_domain *d = fresh("vm-noprot", 1.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "begin3", 1.0, -1), 0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_end_job(d), 1);
    /* Perform3 */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                     "perform3", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_PERFORM3, NULL),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM3_DONE, NULL),
              MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_continue(d), 2);
    CHECK_INT(mj_domain_refs(d), 2);
    /* Confirm3 */
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_OUT), 0);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_CONFIRM3_CANCELLED, NULL),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_migration_job_finish(d), 2);
    CHECK_INT(mj_domain_refs(d), 2);         /* the leaked reference */
    /* removing the domain leaves it alive on the leaked reference */
    CHECK_INT(mj_domain_remove(d), 1);
    CHECK(mj_domain_alive(d));
    CHECK_INT(mj_domain_unref(d), 0);
    CHECK(!mj_domain_alive(d));
    mj_domain_unpin(d);
}

/* v2 source and peer-to-peer source: one call from Start to Finish */
static void test_refs_v2_and_p2p(void)
{
    mj_domain *d = fresh("vm-v2", 1.0, 0, false);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                     "perform", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM2, NULL), MJ_PHASE_SET);
    CHECK_STR(mj_async_job_phase_to_string(mj_domain_async_job(d),
                                           mj_domain_phase(d)), "perform2");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);

    static const int p2p[] = { MJ_PHASE_BEGIN3, MJ_PHASE_PERFORM3,
                               MJ_PHASE_PERFORM3_DONE, MJ_PHASE_CONFIRM3 };
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                     "perform", 1.0, -1, false, 0), 0);
    for (int i = 0; i < 4; i++) {
        CHECK_INT(mj_migration_job_set_phase(d, p2p[i], NULL), MJ_PHASE_SET);
        CHECK_INT(mj_domain_refs(d), 2);
    }
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}

static void test_refs_start_phase_refused(void)
{
    mj_domain *d = fresh("vm-refused", 1.0, 0, false);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                     "begin3", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_continue(d), 1);
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_BEGIN3, NULL),
              MJ_PHASE_BACKWARDS);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR,
              "migration protocol going backwards perform3 => begin3");
    CHECK_INT(mj_domain_refs(d), 2);      /* +1 even when refused */
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_PERFORM3);
    CHECK_INT(mj_domain_async_owner_thread(d), 0);  /* a refusal changes nothing */
    CHECK_INT(mj_migration_job_continue(d), 1);
    /* the next API: StartPhase 1->2, Finish 2->1 */
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_CONFIRM3, NULL),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);

    /* StartPhase without any async job: +1 and nothing else (the seed
     * refs before SetPhase, which is a no-op without a job) */
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_PERFORM3, NULL),
              MJ_PHASE_NO_JOB);
    CHECK_ERR(MJ_ERR_OK, "");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_NONE);
    CHECK_INT(mj_migration_job_continue(d), 1);
    dispose(d);
}

/* A refused (backwards) phase changes nothing but StartPhase's reference:
 * libvirt-jobs.md §4.3 "returns without changing anything"; 0.10.2 and
 * modern libvirt check the phase before touching the owner. */
static void refused_phase_case(bool strict, bool start)
{
    mj_domain *d = fresh(strict ? "vm-refs" : "vm-ref", 1.0, 0, strict);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "begin3",
                                     1.0, -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM3, "perform3"),
              MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_continue(d), 1);      /* parked */
    int rc = start ? mj_migration_job_start_phase(d, MJ_PHASE_BEGIN3, "intruder")
                   : mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, "intruder");
    CHECK_INT(rc, strict ? -1 : MJ_PHASE_BACKWARDS);
    CHECKF(mj_domain_async_owner_api(d) &&
           strcmp(mj_domain_async_owner_api(d), "perform3") == 0,
           "%s %s: refused phase changed async_owner_api to \"%s\"",
           strict ? "strict" : "default", start ? "start_phase" : "set_phase",
           mj_domain_async_owner_api(d) ? mj_domain_async_owner_api(d) : "NULL");
    CHECKF(mj_domain_async_owner_thread(d) == 0,
           "%s %s: refused phase made the caller the async owner thread",
           strict ? "strict" : "default", start ? "start_phase" : "set_phase");
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_PERFORM3);
    CHECK_INT(mj_domain_refs(d), start ? 2 : 1);
    if (start)
        mj_migration_job_continue(d);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_CONFIRM3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}

static void test_refused_phase_changes_no_owner(void)
{
    refused_phase_case(false, false);
    refused_phase_case(false, true);
    refused_phase_case(true, false);
    refused_phase_case(true, true);
}

/* Continue returning 0: a transient domain removed while parked dies with
 * the last API's reference ("domain disappeared" in libvirt). */
static void test_refs_domain_disappeared(void)
{
    mj_domain *d = fresh("vm-gone", 1.0, 0, false);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                     "begin3", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_remove(d), 1);
    CHECK(mj_domain_alive(d));
    CHECK_INT(mj_migration_job_continue(d), 0);
    CHECK(!mj_domain_alive(d));
    CHECK_INT(mj_domain_refs(d), 0);
    CHECK_STR(mj_domain_name(d), "vm-gone");
    mj_reset_last_error();
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_PERFORM3, NULL), -1);
    CHECK_ERR(MJ_ERR_NO_DOMAIN, "no domain with matching name 'vm-gone'");
    mj_domain_unpin(d);
}

/* ======================================================================== */
/* masks                                                                    */

/* begin `job` with a short timeout from this thread; true when granted
 * (and ended again) */
static bool try_job(mj_domain *d, int job, double timeout)
{
    if (mj_begin_job(d, job, "probe", timeout, -1) != 0)
        return false;
    mj_end_job(d);
    return true;
}

static void check_allowed_set(mj_domain *d, uint64_t allowed, const char *blocker)
{
    char expect[256];
    if (blocker)
        snprintf(expect, sizeof(expect),
                 "cannot acquire state change lock (held by monitor=%s)", blocker);
    else
        snprintf(expect, sizeof(expect), "cannot acquire state change lock");
    for (int j = MJ_JOB_QUERY; j <= MJ_JOB_MIGRATION_OP; j++) {
        int refs = mj_domain_refs(d);
        bool want = (allowed & MJ_JOB_MASK(j)) != 0;
        mj_reset_last_error();
        bool got = try_job(d, j, want ? 2.0 : 0.05);
        CHECKF(got == want, "job %s: expected %s under mask 0x%llx",
               mj_job_to_string(j), want ? "allowed" : "blocked",
               (unsigned long long)allowed);
        if (!want)
            CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT, expect);
        CHECK_INT(mj_domain_refs(d), refs);
    }
}

static void test_masks(void)
{
    mj_domain *d = fresh("vm-mask", 1.0, 0, false);
    /* no async job: the default mask, and set_async_job_mask is a no-op */
    CHECK_HEX(mj_domain_mask(d), MJ_DEFAULT_JOB_MASK);
    CHECK_INT(mj_set_async_job_mask(d, 0x08), 0);
    CHECK_HEX(mj_domain_mask(d), MJ_DEFAULT_JOB_MASK);
    check_allowed_set(d, 0x3f, NULL);

    /* begin_async_job: default mask, job info NONE */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    CHECK_HEX(mj_domain_mask(d), MJ_DEFAULT_JOB_MASK);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_NONE);
    check_allowed_set(d, MJ_DEFAULT_JOB_MASK, "save");
    /* DESTROY is always added */
    CHECK_INT(mj_set_async_job_mask(d, 0), 0);
    CHECK_HEX(mj_domain_mask(d), 0x02);
    check_allowed_set(d, 0x02, "save");
    CHECK_INT(mj_set_async_job_mask(d, MJ_JOB_MASK(MJ_JOB_MODIFY)), 0);
    CHECK_HEX(mj_domain_mask(d), 0x0a);
    check_allowed_set(d, 0x0a, "save");
    CHECK_INT(mj_set_async_job_mask(d, UINT64_MAX), 0);
    CHECK_HEX(mj_domain_mask(d), UINT64_MAX);
    CHECK_INT(mj_end_async_job(d), 1);
    CHECK_HEX(mj_domain_mask(d), MJ_DEFAULT_JOB_MASK);

    /* migration_job_start: OUT 0x37, IN 0x02, SAVE/DUMP the OUT mask */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "begin3",
                                     1.0, -1, false, 0), 0);
    CHECK_HEX(mj_domain_mask(d), 0x37);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_UNBOUNDED);
    check_allowed_set(d, 0x37, "begin3");
    /* parked: still enforced, and the blocker is still the last API */
    CHECK_INT(mj_migration_job_continue(d), 1);
    check_allowed_set(d, 0x37, "begin3");
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_CONFIRM3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_NONE);

    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN, "prepare3",
                                     1.0, -1, false, 0), 0);
    CHECK_HEX(mj_domain_mask(d), 0x02);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_UNBOUNDED);
    check_allowed_set(d, 0x02, "prepare3");
    CHECK_INT(mj_migration_job_finish(d), 1);

    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1,
                                     false, 0), 0);
    CHECK_HEX(mj_domain_mask(d), 0x37);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_DUMP, "dump", 1.0, -1,
                                     false, 0), 0);
    CHECK_HEX(mj_domain_mask(d), 0x37);
    CHECK_INT(mj_migration_job_finish(d), 1);

    /* explicit masks, DESTROY still added */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "b", 1.0,
                                     -1, true, MJ_JOB_MASK(MJ_JOB_QUERY)), 0);
    CHECK_HEX(mj_domain_mask(d), 0x03);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN, "p", 1.0,
                                     -1, true, 0), 0);
    CHECK_HEX(mj_domain_mask(d), 0x02);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN, "p", 1.0,
                                     -1, true, 0x39), 0);
    CHECK_HEX(mj_domain_mask(d), 0x3b);
    CHECK_INT(mj_migration_job_finish(d), 1);

    /* an async begin while an async job is active waits for it to end and
     * names the async owner */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                     "perform3", 1.0, -1, false, 0), 0);
    mj_reset_last_error();
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 0.05, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=perform3)");
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "x", 0.05,
                                     -1, false, 0), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=perform3)");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}

/* ======================================================================== */
/* owners, job info                                                         */

static void *start_phase_thread(void *arg)
{
    mj_domain *d = arg;
    uint64_t *out = malloc(2 * sizeof(*out));
    out[0] = (uint64_t)mj_migration_job_start_phase(d, MJ_PHASE_PERFORM3,
                                                     "perform3");
    out[1] = mj_domain_async_owner_thread(d) == self_id();
    mj_migration_job_continue(d);
    return out;
}

static void test_owners_and_info(void)
{
    mj_domain *d = fresh("vm-own", 1.0, 0, false);
    CHECK_INT(mj_domain_owner_thread(d), 0);
    CHECK_INT(mj_domain_async_owner_thread(d), 0);
    CHECK_STR(mj_domain_owner_api(d), NULL);
    CHECK_STR(mj_domain_async_owner_api(d), NULL);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_NONE);
    CHECK(mj_domain_job_elapsed(d) == 0.0);
    CHECK(!mj_domain_abort_requested(d));

    /* the API name is copied */
    char buf[32];
    snprintf(buf, sizeof(buf), "setMemory");
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, buf, 1.0, -1), 0);
    snprintf(buf, sizeof(buf), "XXXXXXXXX");
    CHECK_STR(mj_domain_owner_api(d), "setMemory");
    CHECK_INT(mj_domain_owner_thread(d), self_id());
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_MODIFY);
    /* the thread-local copy survives calls of other getters */
    const char *p = mj_domain_owner_api(d);
    (void)mj_domain_async_owner_api(d);
    CHECK_STR(p, "setMemory");
    CHECK_INT(mj_end_job(d), 1);
    CHECK_STR(mj_domain_owner_api(d), NULL);
    CHECK_INT(mj_domain_owner_thread(d), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    /* NULL api: none recorded */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, NULL, 1.0, -1), 0);
    CHECK_STR(mj_domain_owner_api(d), NULL);
    CHECK_INT(mj_domain_owner_thread(d), self_id());
    CHECK_INT(mj_end_job(d), 1);

    /* async owner */
    snprintf(buf, sizeof(buf), "begin3");
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, buf, 1.0,
                                     -1, false, 0), 0);
    snprintf(buf, sizeof(buf), "XXXXXX");
    CHECK_STR(mj_domain_async_owner_api(d), "begin3");
    CHECK_INT(mj_domain_async_owner_thread(d), self_id());
    CHECK_INT(mj_domain_owner_thread(d), 0);
    CHECK_STR(mj_domain_owner_api(d), NULL);
    sleep_s(0.06);
    double el = mj_domain_job_elapsed(d);
    CHECK_RANGE(el, 0.05, 0.06 + SLACK);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "monitor",
                                  1.0, -1), 0);
    CHECK_STR(mj_domain_owner_api(d), "monitor");
    CHECK_INT(mj_domain_owner_thread(d), self_id());
    CHECK_STR(mj_domain_async_owner_api(d), "begin3");
    CHECK_INT(mj_end_nested_job(d), 2);
    CHECK_STR(mj_domain_owner_api(d), NULL);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, "begin3b"),
              MJ_PHASE_SET);
    CHECK_STR(mj_domain_async_owner_api(d), "begin3b");
    CHECK_INT(mj_migration_job_continue(d), 1);
    CHECK_INT(mj_domain_async_owner_thread(d), 0);
    CHECK_STR(mj_domain_async_owner_api(d), "begin3b");
    CHECK(mj_domain_job_elapsed(d) >= el);

    /* another thread runs the next phase and becomes the owner */
    pthread_t th;
    void *res = NULL;
    pthread_create(&th, NULL, start_phase_thread, d);
    pthread_join(th, &res);
    uint64_t *out = res;
    CHECK_INT(out[0], MJ_PHASE_SET);
    CHECK_INT(out[1], 1);
    free(out);
    CHECK_STR(mj_domain_async_owner_api(d), "perform3");
    CHECK_INT(mj_domain_async_owner_thread(d), 0);
    CHECK_INT(mj_domain_refs(d), 1);
    /* this thread takes it back for the last phase */
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_CONFIRM3, "confirm3"),
              MJ_PHASE_SET);
    CHECK_INT(mj_domain_async_owner_thread(d), self_id());
    CHECK_STR(mj_domain_async_owner_api(d), "confirm3");
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_STR(mj_domain_async_owner_api(d), NULL);
    CHECK_INT(mj_domain_async_owner_thread(d), 0);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_NONE);
    CHECK(mj_domain_job_elapsed(d) == 0.0);
    dispose(d);
}

/* ======================================================================== */
/* jobs_queued and max_queued                                               */

static void test_jobs_queued(void)
{
    mj_domain *d = fresh("vm-q", 1.0, 0, false);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "m", 1.0, -1), 0);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    /* a waiter counts (and holds a reference) */
    worker w;
    worker_init(&w, d, W_SYNC, MJ_JOB_QUERY, "q", 10.0);
    worker_start_queued(&w, 3);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    /* a failed begin gives both back */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "t", 0.02, -1), -1);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    CHECK_INT(mj_domain_refs(d), 3);
    /* the waiter's reference stays unless it already ended its job: the
     * end gives its reference back after the hand-off */
    CHECK_RANGE(mj_end_job(d), 1, 2);
    worker_join(&w);
    CHECK_INT(w.rc, 0);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_domain_refs(d), 1);

    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "s", 1.0, -1), 0);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_SAVE, "n", 1.0, -1), 0);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    CHECK_INT(mj_end_nested_job(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_end_async_job(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);
}

static void test_max_queued(void)
{
    mj_domain *d = fresh("vm-mq", 1.0, 2, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q1", 1.0, -1), 0);
    worker w;
    worker_init(&w, d, W_SYNC, MJ_JOB_MODIFY, "m", 10.0);
    worker_start_queued(&w, 3);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    /* the third fails at once */
    double t0 = now_s();
    mj_reset_last_error();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q3", 5.0, -1), -1);
    CHECK_RANGE(now_s() - t0, 0.0, 1.0);
    CHECK_ERR(MJ_ERR_OPERATION_FAILED,
              "cannot acquire state change lock (held by monitor=q1) due to "
              "max_queued limit");
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    CHECK_INT(mj_domain_refs(d), 3);
    /* also for a sliced begin */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q3", 5.0, 0), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_FAILED);
    /* DESTROY and async begins are exempt: they wait (and time out) */
    mj_reset_last_error();
    CHECK_INT(mj_begin_job(d, MJ_JOB_DESTROY, "destroy", 0.05, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=q1)");
    mj_reset_last_error();
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_DUMP, "dump", 0.05, -1), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_TIMEOUT);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_RANGE(mj_end_job(d), 1, 2);
    worker_join(&w);
    CHECK_INT(w.rc, 0);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_domain_refs(d), 1);
    /* once the queue drains, begins work again */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 0.02, -1), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_TIMEOUT);
    CHECK_INT(mj_end_job(d), 1);

    /* a mask-blocked request names the async owner */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "begin3",
                                     1.0, -1, false, 0), 0);
    worker_init(&w, d, W_SYNC, MJ_JOB_MODIFY, "m", 10.0);
    worker_start_queued(&w, 3);
    mj_reset_last_error();
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "m2", 5.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_FAILED,
              "cannot acquire state change lock (held by monitor=begin3) due "
              "to max_queued limit");
    CHECK_RANGE(mj_migration_job_finish(d), 1, 2);
    worker_join(&w);
    CHECK_INT(w.rc, 0);
    CHECK_INT(w.seen_async, MJ_ASYNC_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 1);
    dispose(d);

    /* max_queued = 1: an active async job makes its own nested job fail;
     * with no sync holder the text is bare */
    d = fresh("vm-mq1", 1.0, 1, false);
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    mj_reset_last_error();
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_SAVE, "n", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_FAILED,
              "cannot acquire state change lock due to max_queued limit");
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_FAILED,
              "cannot acquire state change lock due to max_queued limit");
    /* DESTROY is exempt and allowed by every mask */
    CHECK_INT(mj_begin_job(d, MJ_JOB_DESTROY, "destroy", 1.0, -1), 0);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    CHECK_INT(mj_end_job(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_end_async_job(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);
}

/* ======================================================================== */
/* timeouts                                                                 */

static void test_timeouts(void)
{
    mj_domain *d = fresh("vm-t", 0.15, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "setMemory", 1.0, -1), 0);

    /* explicit timeout, the blocker named */
    double t0 = now_s();
    mj_reset_last_error();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "stats", 0.1, -1), -1);
    double el = now_s() - t0;
    CHECK_RANGE(el, 0.095, 0.1 + SLACK);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=setMemory)");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_MODIFY);
    CHECK_STR(mj_domain_owner_api(d), "setMemory");

    /* negative timeout: the domain's default (0.15 s) */
    t0 = now_s();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "stats", -1.0, -1), -1);
    CHECK_RANGE(now_s() - t0, 0.145, 0.15 + SLACK);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_TIMEOUT);

    /* zero: fail at once */
    t0 = now_s();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "stats", 0.0, -1), -1);
    CHECK_RANGE(now_s() - t0, 0.0, 1.0);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_TIMEOUT);
    CHECK_INT(mj_end_job(d), 1);
    /* zero on a free slot succeeds */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "stats", 0.0, -1), 0);
    CHECK_INT(mj_end_job(d), 1);

    /* an async begin blocked only by the sync slot names the sync holder */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "setMemory", 1.0, -1), 0);
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 0.03, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=setMemory)");
    CHECK_INT(mj_end_job(d), 1);

    /* no API name known: bare text */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, NULL, 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "stats", 0.03, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT, "cannot acquire state change lock");
    CHECK_INT(mj_end_job(d), 1);

    /* nested: the sync holder is named */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    worker w;
    atomic_int release;
    atomic_init(&release, 0);
    worker_init(&w, d, W_SYNC, MJ_JOB_QUERY, "blockStats", 1.0);
    w.release = &release;
    worker_start(&w);
    CHECK(wait_flag(&w.acquired, 5.0));
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_SAVE, "monitor", 0.05, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=blockStats)");
    /* a job the mask allows but the slot blocks: the sync holder too */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 0.05, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=blockStats)");
    /* a job the mask forbids: the async owner */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "m", 0.05, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=save)");
    atomic_store(&release, 1);
    worker_join(&w);
    CHECK_INT(w.rc, 0);
    CHECK_INT(mj_end_async_job(d), 1);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);

    /* default_timeout < 0 means 30 s: a 50 ms slice is still waiting */
    d = fresh("vm-t30", -1.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "m", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", -1.0, 0.05), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    mj_pending_cancel();
    CHECK_INT(mj_pending_count(), 0);
    CHECK_INT(mj_end_job(d), 1);
    dispose(d);
}

/* one deadline per begin covers every slice */
static void test_deadline_across_slices(void)
{
    mj_domain *d = fresh("vm-dl", 5.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    double t0 = now_s();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 0.3, 0.1), MJ_WAITING);
    CHECK_RANGE(now_s() - t0, 0.095, 0.1 + SLACK);
    CHECK_INT(mj_pending_count(), 1);
    {
        CHECK_INT(mj_pending_wait(0.1), MJ_WAITING);
        CHECK_INT(mj_domain_refs(d), 3);
        CHECK_INT(mj_domain_jobs_queued(d), 2);
        /* asking for 5 s more still ends at the begin's deadline */
        mj_reset_last_error();
        CHECK_INT(mj_pending_wait(5.0), -1);
        CHECK_RANGE(now_s() - t0, 0.295, 0.3 + SLACK);
        CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
                  "cannot acquire state change lock (held by monitor=holder)");
    }
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    /* wait_for < 0: until the deadline */
    t0 = now_s();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 0.2, 0.05), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_pending_wait(-1), -1);
    CHECK_RANGE(now_s() - t0, 0.195, 0.2 + SLACK);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_TIMEOUT);
    CHECK_INT(mj_end_job(d), 1);
    dispose(d);
}

/* ======================================================================== */
/* abort                                                                    */

static void test_abort(void)
{
    mj_domain *d = fresh("vm-abort", 1.0, 0, false);
    /* nothing to abort: the ABORT job is ended again */
    CHECK_INT(mj_abort_job(d, "abort", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_check_abort(d), 0);

    static const int kinds[] = { MJ_ASYNC_JOB_MIGRATION_OUT, MJ_ASYNC_JOB_SAVE,
                                 MJ_ASYNC_JOB_DUMP };
    for (int i = 0; i < 3; i++) {
        char expect[128];
        snprintf(expect, sizeof(expect), "%s: canceled by client",
                 job_label(kinds[i]));
        CHECK_INT(mj_migration_job_start(d, kinds[i], "job", 1.0, -1, false, 0), 0);
        CHECK(!mj_domain_abort_requested(d));
        CHECK_INT(mj_check_abort(d), 0);
        CHECK_INT(mj_abort_job(d, "abort", 1.0, -1), 0);
        CHECK(mj_domain_abort_requested(d));
        CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
        CHECK_INT(mj_domain_refs(d), 2);
        CHECK_INT(mj_domain_jobs_queued(d), 1);
        mj_reset_last_error();
        CHECK_INT(mj_check_abort(d), -1);
        CHECK_ERR(MJ_ERR_OPERATION_ABORTED, expect);
        CHECK_INT(mj_migration_job_finish(d), 1);
        CHECK(!mj_domain_abort_requested(d));
        CHECK_INT(mj_check_abort(d), 0);
    }
    /* begin_async_job's default mask lets ABORT through too */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    CHECK_INT(mj_abort_job(d, NULL, 1.0, -1), 0);
    CHECK_INT(mj_check_abort(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "save: canceled by client");
    CHECK_INT(mj_end_async_job(d), 1);

    /* incoming migration: the mask blocks ABORT; once allowed, refused */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN, "prepare3",
                                     1.0, -1, false, 0), 0);
    mj_reset_last_error();
    CHECK_INT(mj_abort_job(d, "abort", 0.05, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=prepare3)");
    CHECK_INT(mj_set_async_job_mask(d, MJ_JOB_MASK(MJ_JOB_ABORT)), 0);
    mj_reset_last_error();
    CHECK_INT(mj_abort_job(d, "abort", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID,
              "cannot abort incoming migration; use virDomainDestroy instead");
    CHECK(!mj_domain_abort_requested(d));
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);

    /* the body alone, for a caller holding the ABORT job */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "p", 1.0,
                                     -1, false, 0), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_ABORT, "abort", 1.0, -1), 0);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_abort_apply(d), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK(mj_domain_abort_requested(d));
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_begin_job(d, MJ_JOB_ABORT, "abort", 1.0, -1), 0);
    CHECK_INT(mj_abort_apply(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 1);

    /* wait_for = 0 on a free slot applies at once */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "p", 1.0,
                                     -1, false, 0), 0);
    CHECK_INT(mj_abort_job(d, "abort", 1.0, 0), 0);
    CHECK(mj_domain_abort_requested(d));
    CHECK_INT(mj_migration_job_finish(d), 1);

    /* from another thread, during the owner's nested job: waits for the
     * sync slot like any ABORT job */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "perform3",
                                     1.0, -1, false, 0), 0);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "monitor",
                                  1.0, -1), 0);
    worker w;
    worker_init(&w, d, W_ABORT, 0, "abortJob", 10.0);
    worker_start_queued(&w, 4);
    sleep_s(0.02);
    CHECK(!atomic_load(&w.done));
    CHECK(!mj_domain_abort_requested(d));
    CHECK_RANGE(mj_end_nested_job(d), 2, 3);
    worker_join(&w);
    CHECK_INT(w.rc, 0);
    CHECK(mj_domain_abort_requested(d));
    CHECK_INT(mj_check_abort(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "migration out: canceled by client");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}

/* ======================================================================== */
/* threads: wake-ups, fairness, mask, async/sync races, nesting             */

static atomic_int g_in_sync;     /* threads holding a sync slot right now */
static atomic_int g_overlap;     /* times two held it at once */

static void exclusive_enter(void)
{
    if (atomic_fetch_add(&g_in_sync, 1) != 0)
        atomic_fetch_add(&g_overlap, 1);
}

static void exclusive_leave(void)
{
    atomic_fetch_sub(&g_in_sync, 1);
}

static void in_job_exclusive(worker *w)
{
    (void)w;
    exclusive_enter();
    sleep_s(0.0005);
    exclusive_leave();
}

static void test_wake_all_waiters(void)
{
    enum { N = 24, ROUNDS = 4 };
    mj_domain *d = fresh("vm-wake", 5.0, 0, false);
    static worker ws[N];
    atomic_store(&g_overlap, 0);
    for (int r = 0; r < ROUNDS; r++) {
        CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
        for (int i = 0; i < N; i++) {
            static const int kinds[] = { MJ_JOB_QUERY, MJ_JOB_MODIFY,
                                         MJ_JOB_SUSPEND, MJ_JOB_DESTROY };
            worker_init(&ws[i], d, W_SYNC, kinds[i % 4], "waiter", 20.0);
            ws[i].in_job = in_job_exclusive;
            worker_start(&ws[i]);
        }
        CHECKF(wait_refs(d, 2 + N), "round %d: refs %d, wanted %d", r,
               mj_domain_refs(d), 2 + N);
        CHECK_INT(mj_domain_jobs_queued(d), 1 + N);
        double t0 = now_s();
        CHECK_RANGE(mj_end_job(d), 1, 1 + N);
        int ok = 0;
        for (int i = 0; i < N; i++) {
            worker_join(&ws[i]);
            if (ws[i].rc == 0)
                ok++;
            else
                H_FAIL("round %d waiter %d: rc %d err %d \"%s\"", r, i,
                       ws[i].rc, ws[i].err, ws[i].msg);
        }
        CHECK_INT(ok, N);
        CHECK_RANGE(now_s() - t0, 0.0, SLACK + 2.0);
        CHECK_INT(mj_domain_refs(d), 1);
        CHECK_INT(mj_domain_jobs_queued(d), 0);
    }
    CHECK_INT(atomic_load(&g_overlap), 0);
    dispose(d);
}

typedef struct {
    mj_domain *d;
    int id, iters;
    atomic_int *failures;
    pthread_barrier_t *gate;    /* all threads start together */
} cycle_arg;

static void *cycle_main(void *arg)
{
    cycle_arg *a = arg;
    unsigned seed = (unsigned)a->id * 7919u + 1;
    pthread_barrier_wait(a->gate);
    for (int i = 0; i < a->iters; i++) {
        static const int kinds[] = { MJ_JOB_QUERY, MJ_JOB_MODIFY,
                                     MJ_JOB_SUSPEND, MJ_JOB_MIGRATION_OP };
        int k = kinds[rand_r(&seed) % 4];
        if (mj_begin_job(a->d, k, "cycle", 20.0, -1) != 0) {
            atomic_fetch_add(a->failures, 1);
            H_FAIL("cycle thread %d iter %d: begin %s failed: %d \"%s\"",
                   a->id, i, mj_job_to_string(k), mj_last_error_code(),
                   mj_last_error_message());
            continue;
        }
        exclusive_enter();
        if (mj_domain_active_job(a->d) != k ||
            mj_domain_owner_thread(a->d) != self_id())
            atomic_fetch_add(&g_overlap, 1);
        exclusive_leave();
        if (mj_end_job(a->d) < 1)
            atomic_fetch_add(a->failures, 1);
    }
    return NULL;
}

static void test_many_waiters_cycles(void)
{
    enum { T = 16, ITERS = 300 };
    mj_domain *d = fresh("vm-cyc", 20.0, 0, false);
    pthread_t th[T];
    cycle_arg args[T];
    atomic_int failures;
    pthread_barrier_t gate;
    pthread_barrier_init(&gate, NULL, T);
    atomic_init(&failures, 0);
    atomic_store(&g_overlap, 0);
    double t0 = now_s();
    for (int i = 0; i < T; i++) {
        args[i] = (cycle_arg){ d, i, ITERS, &failures, &gate };
        pthread_create(&th[i], NULL, cycle_main, &args[i]);
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&gate);
    CHECK_INT(atomic_load(&failures), 0);
    CHECK_INT(atomic_load(&g_overlap), 0);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_RANGE(now_s() - t0, 0.0, 60.0);
    dispose(d);
}

static void test_fifo_order(void)
{
    enum { N = 10 };
    mj_domain *d = fresh("vm-fifo", 5.0, 0, false);
    static worker ws[N];
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    for (int i = 0; i < N; i++) {
        static const int kinds[] = { MJ_JOB_MODIFY, MJ_JOB_QUERY,
                                     MJ_JOB_SUSPEND };
        worker_init(&ws[i], d, W_SYNC, kinds[i % 3], "fifo", 20.0);
        ws[i].hold = 0.001;
        worker_start_queued(&ws[i], 2 + i + 1);
    }
    long base = atomic_load(&g_seq);
    CHECK_RANGE(mj_end_job(d), 1, 1 + N);
    for (int i = 0; i < N; i++) {
        worker_join(&ws[i]);
        CHECK_INT(ws[i].rc, 0);
        CHECKF(ws[i].seq - base == i, "waiter %d served at position %ld",
               i, ws[i].seq - base);
    }
    CHECK_INT(mj_domain_refs(d), 1);

    /* mixed: async A, QUERY B, MODIFY C queued behind a MODIFY.  A gets
     * the async job first, B runs beside it, C waits for A to end. */
    atomic_int relA;
    atomic_init(&relA, 0);
    worker A, B, C;
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    worker_init(&A, d, W_ASYNC, MJ_ASYNC_JOB_SAVE, "save", 10.0);
    A.release = &relA;
    worker_start_queued(&A, 3);
    worker_init(&B, d, W_SYNC, MJ_JOB_QUERY, "query", 10.0);
    worker_start_queued(&B, 4);
    worker_init(&C, d, W_SYNC, MJ_JOB_MODIFY, "modify", 10.0);
    worker_start_queued(&C, 5);
    base = atomic_load(&g_seq);
    CHECK_RANGE(mj_end_job(d), 3, 4);
    CHECK(wait_flag(&A.acquired, SLACK));
    /* B may run now: it must not wait for A to end */
    CHECKF(wait_flag(&B.done, SLACK), "QUERY waiter not served while an "
           "async job that allows it runs");
    sleep_s(0.05);
    CHECK(!atomic_load(&C.acquired));
    atomic_store(&relA, 1);
    worker_join(&A);
    worker_join(&B);
    worker_join(&C);
    CHECK_INT(A.rc, 0);
    CHECK_INT(B.rc, 0);
    CHECK_INT(C.rc, 0);
    /* A and B are granted by the same end, so the order in which they
     * notice is arbitrary; C comes strictly after both */
    CHECK(A.seq - base <= 1 && B.seq - base <= 1);
    CHECK_INT(C.seq - base, 2);
    CHECK_INT(B.seen_async, MJ_ASYNC_JOB_SAVE);
    CHECK_INT(C.seen_async, MJ_ASYNC_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);
}

static void test_mask_blocked_does_not_block_allowed(void)
{
    mj_domain *d = fresh("vm-mb", 5.0, 0, false);
    /* slot busy with the owner's nested job: A (forbidden) then B (allowed)
     * queue; the nested end hands the slot to B */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                     "perform3", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "monitor",
                                  1.0, -1), 0);
    worker A, B;
    worker_init(&A, d, W_SYNC, MJ_JOB_MODIFY, "modify", 10.0);
    worker_start_queued(&A, 4);
    worker_init(&B, d, W_SYNC, MJ_JOB_QUERY, "query", 10.0);
    worker_start_queued(&B, 5);
    CHECK_RANGE(mj_end_nested_job(d), 3, 4);
    CHECKF(wait_flag(&B.done, SLACK), "allowed waiter held up by a "
           "mask-blocked one");
    CHECK_INT(B.rc, 0);
    CHECK_INT(B.seen_async, MJ_ASYNC_JOB_MIGRATION_OUT);
    sleep_s(0.03);
    CHECK(!atomic_load(&A.acquired));
    /* the owner still gets its nested jobs */
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "monitor",
                                  1.0, -1), 0);
    CHECK_INT(mj_end_nested_job(d), 3);
    CHECK_RANGE(mj_migration_job_finish(d), 1, 2);
    worker_join(&A);
    worker_join(&B);
    CHECK_INT(A.rc, 0);
    CHECK_INT(A.seen_async, MJ_ASYNC_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 1);

    /* slot free: an allowed job arriving behind a blocked waiter gets it
     * at once */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN,
                                     "prepare3", 1.0, -1, false, 0), 0);
    worker_init(&A, d, W_SYNC, MJ_JOB_QUERY, "query", 10.0);
    worker_start_queued(&A, 3);
    double t0 = now_s();
    CHECK_INT(mj_begin_job(d, MJ_JOB_DESTROY, "destroy", 1.0, -1), 0);
    CHECK_RANGE(now_s() - t0, 0.0, 0.9);
    CHECK_INT(mj_end_job(d), 3);
    CHECK(!atomic_load(&A.acquired));
    CHECK_RANGE(mj_migration_job_finish(d), 1, 2);
    worker_join(&A);
    CHECK_INT(A.rc, 0);

    /* a mask change that lets a waiter through must not leave it waiting
     * until the next end: set under the owner's nested job, then end it */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_DUMP, "dump", 1.0, -1), 0);
    worker_init(&A, d, W_SYNC, MJ_JOB_SUSPEND, "suspend", 10.0);
    worker_start_queued(&A, 3);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_DUMP, "m", 1.0, -1), 0);
    CHECK_INT(mj_set_async_job_mask(d, MJ_JOB_MASK(MJ_JOB_SUSPEND)), 0);
    CHECK_RANGE(mj_end_nested_job(d), 2, 3);
    CHECKF(wait_flag(&A.done, SLACK), "SUSPEND waiter not woken after the "
           "mask allowed it and the slot was freed");
    CHECK_INT(A.rc, 0);
    CHECK_INT(A.seen_async, MJ_ASYNC_JOB_DUMP);
    worker_join(&A);

    /* widening the mask while the slot is free lets a waiter in at once */
    worker_init(&A, d, W_SYNC, MJ_JOB_MODIFY, "modify", 10.0);
    worker_start_queued(&A, 3);
    sleep_s(0.02);
    CHECK(!atomic_load(&A.acquired));
    CHECK_INT(mj_set_async_job_mask(d, MJ_JOB_MASK(MJ_JOB_MODIFY)), 0);
    CHECKF(wait_flag(&A.done, SLACK), "MODIFY waiter not woken when "
           "set_async_job_mask allowed it");
    worker_join(&A);
    CHECK_INT(A.rc, 0);
    CHECK_INT(A.seen_async, MJ_ASYNC_JOB_DUMP);
    CHECK_INT(mj_end_async_job(d), 1);
    dispose(d);
}

static void test_end_async_wakes(void)
{
    mj_domain *d = fresh("vm-ea", 5.0, 0, false);
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    worker A, B;
    worker_init(&A, d, W_ASYNC, MJ_ASYNC_JOB_DUMP, "dump", 10.0);
    A.hold = 0.05;
    worker_start_queued(&A, 3);
    worker_init(&B, d, W_SYNC, MJ_JOB_MODIFY, "modify", 10.0);
    worker_start_queued(&B, 4);
    long base = atomic_load(&g_seq);
    CHECK_RANGE(mj_end_async_job(d), 1, 3);
    worker_join(&A);
    worker_join(&B);
    CHECK_INT(A.rc, 0);
    CHECK_INT(A.seen_async, MJ_ASYNC_JOB_DUMP);
    CHECK_INT(A.seen_owner, (uint64_t)(uintptr_t)A.th);
    CHECK_RANGE(A.end_rc, 1, 2);
    CHECK_INT(B.rc, 0);
    CHECK_INT(B.seen_async, MJ_ASYNC_JOB_NONE);
    CHECK_INT(A.seq - base, 0);
    CHECK_INT(B.seq - base, 1);

    /* a sync end hands over to an async waiter */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), 0);
    worker_init(&A, d, W_MIGSTART, MJ_ASYNC_JOB_MIGRATION_OUT, "begin3", 10.0);
    worker_start_queued(&A, 3);
    CHECK_RANGE(mj_end_job(d), 1, 2);
    worker_join(&A);
    CHECK_INT(A.rc, 0);
    CHECK_HEX(A.seen_mask, 0x37);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);
}

/* async / sync race: async holders never coexist with a MODIFY or SUSPEND
 * (not in the default mask), sync holders never overlap */
typedef struct {
    mj_domain *d;
    int id, iters;
    bool async_side;
    atomic_int *failures;
    pthread_barrier_t *gate;
} race_arg;

static void *race_main(void *arg)
{
    race_arg *a = arg;
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

static void test_async_sync_race(void)
{
    enum { T = 10, ITERS = 150 };
    mj_domain *d = fresh("vm-race", 20.0, 0, false);
    pthread_t th[T];
    race_arg args[T];
    atomic_int failures;
    pthread_barrier_t gate;
    pthread_barrier_init(&gate, NULL, T);
    atomic_init(&failures, 0);
    atomic_store(&g_overlap, 0);
    for (int i = 0; i < T; i++) {
        args[i] = (race_arg){ d, i, ITERS, i < 4, &failures, &gate };
        pthread_create(&th[i], NULL, race_main, &args[i]);
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
} query_arg;

static void *query_loop(void *arg)
{
    query_arg *a = arg;
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

static void test_nested_interleaving(void)
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
    query_arg qa = { d, &stop, &served, &failures };
    for (int i = 0; i < T; i++)
        pthread_create(&th[i], NULL, query_loop, &qa);
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
/* sliced waits                                                             */

static void test_sliced_waits(void)
{
    mj_domain *d = fresh("vm-sl", 5.0, 0, false);

    /* free slot: granted at once */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "sliced", 5.0, 0), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_QUERY);
    CHECK_INT(mj_end_job(d), 1);

    /* busy: MJ_WAITING keeps the place, reference and queue slot */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    double t0 = now_s();
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "sliced", 5.0, 0), MJ_WAITING);
    CHECK_RANGE(now_s() - t0, 0.0, 1.0);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    {
        t0 = now_s();
        CHECK_INT(mj_pending_wait(0.05), MJ_WAITING);
        CHECK_RANGE(now_s() - t0, 0.045, 0.05 + SLACK);
        CHECK_INT(mj_pending_wait(0), MJ_WAITING);
        mj_pending_cancel();
    }
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_MODIFY);
    CHECK_STR(mj_domain_owner_api(d), "holder");
    CHECK_INT(mj_end_job(d), 1);

    /* granted through mj_pending_wait */
    atomic_int rel;
    atomic_init(&rel, 0);
    worker h;
    worker_init(&h, d, W_SYNC, MJ_JOB_MODIFY, "holder", 1.0);
    h.release = &rel;
    worker_start(&h);
    CHECK(wait_flag(&h.acquired, SLACK));
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "sliced", 5.0, 0.01), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    atomic_store(&rel, 1);
    CHECK_INT(mj_pending_wait(-1), 0);
    worker_join(&h);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_QUERY);
    CHECK_INT(mj_domain_owner_thread(d), self_id());
    CHECK_STR(mj_domain_owner_api(d), "sliced");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_end_job(d), 1);

    /* cancel after the grant: the job is ended again and the next waiter
     * gets it */
    atomic_store(&rel, 0);
    worker_init(&h, d, W_SYNC, MJ_JOB_MODIFY, "holder", 1.0);
    h.release = &rel;
    worker_start(&h);
    CHECK(wait_flag(&h.acquired, SLACK));
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "sliced", 5.0, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    worker next;
    worker_init(&next, d, W_SYNC, MJ_JOB_MODIFY, "next", 10.0);
    worker_start_queued(&next, 4);
    atomic_store(&rel, 1);
    worker_join(&h);
    /* the slot was handed to our waiter, which nobody is waiting on */
    double end = now_s() + SLACK;
    while (mj_domain_active_job(d) != MJ_JOB_MODIFY && now_s() < end)
        sleep_s(0.001);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_MODIFY);
    sleep_s(0.03);
    CHECK(!atomic_load(&next.acquired));
    CHECK_INT(mj_domain_refs(d), 3);
    mj_pending_cancel();
    worker_join(&next);
    CHECK_INT(next.rc, 0);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);

    /* wait_for > 0 that is granted within the slice */
    worker_init(&h, d, W_SYNC, MJ_JOB_MODIFY, "holder", 1.0);
    h.hold = 0.1;
    worker_start(&h);
    CHECK(wait_flag(&h.acquired, SLACK));
    t0 = now_s();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "sliced", 5.0, 3.0), 0);
    CHECK_RANGE(now_s() - t0, 0.0, 0.1 + SLACK);
    worker_join(&h);
    CHECK_INT(mj_end_job(d), 1);

    /* async, migration start and nested begins slice the same way */
    atomic_store(&rel, 0);
    worker_init(&h, d, W_SYNC, MJ_JOB_MODIFY, "holder", 1.0);
    h.release = &rel;
    worker_start(&h);
    CHECK(wait_flag(&h.acquired, SLACK));
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 5.0, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    atomic_store(&rel, 1);
    CHECK_INT(mj_pending_wait(5.0), 0);
    worker_join(&h);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_SAVE);
    CHECK_INT(mj_domain_async_owner_thread(d), self_id());
    CHECK_STR(mj_domain_async_owner_api(d), "save");
    CHECK_INT(mj_end_async_job(d), 1);

    atomic_store(&rel, 0);
    worker_init(&h, d, W_SYNC, MJ_JOB_MODIFY, "holder", 1.0);
    h.release = &rel;
    worker_start(&h);
    CHECK(wait_flag(&h.acquired, SLACK));
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "begin3",
                                     5.0, 0, false, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    atomic_store(&rel, 1);
    CHECK_INT(mj_pending_wait(5.0), 0);
    worker_join(&h);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_MIGRATION_OUT);
    CHECK_HEX(mj_domain_mask(d), 0x37);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_UNBOUNDED);

    atomic_store(&rel, 0);
    worker_init(&h, d, W_SYNC, MJ_JOB_QUERY, "stats", 1.0);
    h.release = &rel;
    worker_start(&h);
    CHECK(wait_flag(&h.acquired, SLACK));
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "monitor",
                                  5.0, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    atomic_store(&rel, 1);
    CHECK_INT(mj_pending_wait(5.0), 0);
    worker_join(&h);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_ASYNC_NESTED);
    CHECK_INT(mj_end_nested_job(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);

    /* cancelling a granted async begin ends the async job */
    atomic_store(&rel, 0);
    worker_init(&h, d, W_SYNC, MJ_JOB_MODIFY, "holder", 1.0);
    h.release = &rel;
    worker_start(&h);
    CHECK(wait_flag(&h.acquired, SLACK));
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN, "prepare",
                                     5.0, 0, false, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    atomic_store(&rel, 1);
    worker_join(&h);
    end = now_s() + SLACK;
    while (mj_domain_async_job(d) == MJ_ASYNC_JOB_NONE && now_s() < end)
        sleep_s(0.001);
    mj_pending_cancel();
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_HEX(mj_domain_mask(d), MJ_DEFAULT_JOB_MASK);
    dispose(d);
}

/* the pending-waiter stack is per thread, innermost first */
static void *pending_count_thread(void *arg)
{
    int *out = arg;
    *out = mj_pending_count();
    return NULL;
}

static void test_pending_stack(void)
{
    mj_domain *d1 = fresh("vm-ps1", 5.0, 0, false);
    mj_domain *d2 = fresh("vm-ps2", 5.0, 0, false);

    /* nothing pending */
    CHECK_INT(mj_pending_count(), 0);
    mj_reset_last_error();
    CHECK_INT(mj_pending_wait(0.01), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INTERNAL_ERROR);
    mj_pending_cancel();                       /* a no-op */
    CHECK_INT(mj_pending_count(), 0);

    atomic_int rel1, rel2;
    atomic_init(&rel1, 0);
    atomic_init(&rel2, 0);
    worker h1, h2;
    worker_init(&h1, d1, W_SYNC, MJ_JOB_MODIFY, "h1", 1.0);
    h1.release = &rel1;
    worker_init(&h2, d2, W_SYNC, MJ_JOB_MODIFY, "h2", 1.0);
    h2.release = &rel2;
    worker_start(&h1);
    worker_start(&h2);
    CHECK(wait_flag(&h1.acquired, SLACK));
    CHECK(wait_flag(&h2.acquired, SLACK));

    CHECK_INT(mj_begin_job(d1, MJ_JOB_QUERY, "outer", 5.0, 0), MJ_WAITING);
    CHECK_INT(mj_begin_async_job(d2, MJ_ASYNC_JOB_SAVE, "inner", 5.0, 0),
              MJ_WAITING);
    CHECK_INT(mj_pending_count(), 2);
    /* another thread has none */
    int other = -1;
    pthread_t th;
    pthread_create(&th, NULL, pending_count_thread, &other);
    pthread_join(th, NULL);
    CHECK_INT(other, 0);
    /* a begin that fails, or succeeds at once, leaves the stack alone */
    CHECK_INT(mj_begin_job(d1, MJ_JOB_MODIFY, "x", 0.0, 0.0), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_TIMEOUT);
    CHECK_INT(mj_pending_count(), 2);
    mj_domain *d3 = fresh("vm-ps3", 5.0, 0, false);
    CHECK_INT(mj_begin_job(d3, MJ_JOB_QUERY, "x", 1.0, 0), 0);
    CHECK_INT(mj_end_job(d3), 1);
    dispose(d3);
    CHECK_INT(mj_pending_count(), 2);

    /* the innermost (d2's async begin) is resumed first */
    CHECK_INT(mj_pending_wait(0.02), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 2);
    atomic_store(&rel2, 1);
    worker_join(&h2);
    CHECK_INT(mj_pending_wait(5.0), 0);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_async_job(d2), MJ_ASYNC_JOB_SAVE);
    CHECK_INT(mj_domain_async_owner_thread(d2), self_id());
    CHECK_INT(mj_domain_active_job(d1), MJ_JOB_MODIFY);   /* still h1's */
    CHECK_INT(mj_domain_refs(d1), 3);
    /* then the outer one: cancel it */
    mj_pending_cancel();
    CHECK_INT(mj_pending_count(), 0);
    CHECK_INT(mj_domain_refs(d1), 2);
    CHECK_INT(mj_domain_jobs_queued(d1), 1);
    atomic_store(&rel1, 1);
    worker_join(&h1);
    CHECK_INT(mj_domain_refs(d1), 1);
    CHECK_INT(mj_domain_active_job(d1), MJ_JOB_NONE);
    CHECK_INT(mj_end_async_job(d2), 1);

    /* the waiter's owner is the thread that began it */
    CHECK_INT(mj_begin_job(d1, MJ_JOB_MODIFY, "hold", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d1, MJ_JOB_MODIFY, "inner", 5.0, 0), MJ_WAITING);
    CHECK_INT(mj_end_job(d1), 2);      /* hands the slot to our own waiter */
    CHECK_INT(mj_domain_active_job(d1), MJ_JOB_MODIFY);
    CHECK_INT(mj_pending_wait(0), 0);
    CHECK_STR(mj_domain_owner_api(d1), "inner");
    CHECK_INT(mj_domain_owner_thread(d1), self_id());
    CHECK_INT(mj_end_job(d1), 1);
    CHECK_INT(mj_pending_count(), 0);
    dispose(d1);
    dispose(d2);
}

/* ======================================================================== */
/* notifiers (event-loop waiters)                                           */

static bool fd_readable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static bool fd_wait_readable(int fd, double limit)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, (int)(limit * 1000)) == 1 && (p.revents & POLLIN);
}

static void test_notifier_basics(void)
{
    mj_domain *d = fresh("vm-nf", 5.0, 0, false);
    mj_notifier *n = mj_notifier_new();
    CHECK(n != NULL);
    if (!n) {
        dispose(d);
        return;
    }
    int fd = mj_notifier_fd(n);
    CHECK(fd >= 0);
    CHECK(!fd_readable(fd));
    CHECK(mj_notifier_take(n) == NULL);
    CHECK(mj_pending_detach(n) == NULL);      /* nothing pending */

    /* a queued waiter moves onto the notifier */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "loop", 5.0, 0), MJ_WAITING);
    mj_waiter *w = mj_pending_detach(n);
    CHECK(w != NULL);
    CHECK_INT(mj_pending_count(), 0);
    if (!w) {
        mj_notifier_free(n);
        dispose(d);
        return;
    }
    CHECK_INT(mj_waiter_poll(w), MJ_WAITING);
    CHECK_RANGE(mj_waiter_remaining(w), 0.5, 5.0);
    CHECK(!fd_readable(fd));
    CHECK(mj_notifier_take(n) == NULL);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    /* the grant lists it and makes the fd readable */
    CHECK_INT(mj_end_job(d), 2);
    CHECK(fd_readable(fd));
    CHECK(mj_notifier_take(n) == w);
    CHECK(mj_notifier_take(n) == NULL);
    CHECK(!fd_readable(fd));
    CHECK_INT(mj_waiter_poll(w), 0);           /* held; w is gone */
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_QUERY);
    CHECK_STR(mj_domain_owner_api(d), "loop");
    CHECK_INT(mj_end_job(d), 1);

    /* resolved before the detach: listed at once */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "loop", 5.0, 0), MJ_WAITING);
    CHECK_INT(mj_end_job(d), 2);               /* granted to the pending one */
    w = mj_pending_detach(n);
    CHECK(w != NULL);
    CHECK(fd_readable(fd));
    CHECK(mj_notifier_take(n) == w);
    CHECK_INT(mj_waiter_poll(w), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_MODIFY);

    /* a failure is listed too: remove fails the waiter */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "loop", 5.0, 0), MJ_WAITING);
    w = mj_pending_detach(n);
    CHECK(!fd_readable(fd));
    CHECK_INT(mj_domain_refs(d), 3);
    mj_domain_pin(d);
    CHECK_INT(mj_domain_remove(d), 2);
    CHECK(fd_readable(fd));
    CHECK(mj_notifier_take(n) == w);
    mj_reset_last_error();
    CHECK_INT(mj_waiter_poll(w), -1);
    CHECK_ERR(MJ_ERR_NO_DOMAIN, "no domain with matching name 'vm-nf'");
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_end_job(d), 0);
    mj_domain_unpin(d);
    mj_domain_unpin(d);

    /* timeouts are not announced: the loop polls at the deadline */
    d = fresh("vm-nf2", 5.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "loop", 0.05, 0), MJ_WAITING);
    w = mj_pending_detach(n);
    CHECK_RANGE(mj_waiter_remaining(w), 0.0, 0.05);
    sleep_s(0.06);
    CHECK(mj_waiter_remaining(w) == 0.0);
    mj_reset_last_error();
    CHECK_INT(mj_waiter_poll(w), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=holder)");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);

    /* cancel while queued, and cancel after a grant (the job is ended and
     * handed on) */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "loop", 5.0, 0), MJ_WAITING);
    w = mj_pending_detach(n);
    mj_waiter_cancel(w);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "loop", 5.0, 0), MJ_WAITING);
    w = mj_pending_detach(n);
    worker next;
    worker_init(&next, d, W_SYNC, MJ_JOB_MODIFY, "next", 10.0);
    worker_start_queued(&next, 4);
    CHECK_RANGE(mj_end_job(d), 2, 3);
    CHECK(fd_wait_readable(fd, SLACK));
    mj_waiter_cancel(w);                       /* listed, never taken */
    worker_join(&next);
    CHECK_INT(next.rc, 0);
    CHECK(mj_notifier_take(n) == NULL);        /* cancel unlisted it */
    CHECK(!fd_readable(fd));
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);

    /* the notifier outlives its owner's reference while waiters use it */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "loop", 5.0, 0), MJ_WAITING);
    w = mj_pending_detach(n);
    mj_notifier_free(n);
    CHECK_INT(mj_end_job(d), 2);
    CHECK_INT(mj_waiter_poll(w), 0);           /* frees the notifier too */
    CHECK_INT(mj_end_job(d), 1);
    dispose(d);
}

/* one event loop serving many waiters of several domains in FIFO order */
static void test_notifier_event_loop(void)
{
    enum { DOMS = 3, PER = 6 };
    mj_domain *ds[DOMS];
    mj_waiter *ws[DOMS][PER];
    int served[DOMS];
    char apis[DOMS][PER][16];
    mj_notifier *n = mj_notifier_new();
    if (!n) {
        H_FAIL("mj_notifier_new failed");
        return;
    }
    atomic_int rel;
    atomic_init(&rel, 0);
    worker holders[DOMS];
    for (int i = 0; i < DOMS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "vm-loop%d", i);
        ds[i] = fresh(name, 10.0, 0, false);
        served[i] = 0;
        worker_init(&holders[i], ds[i], W_SYNC, MJ_JOB_MODIFY, "holder", 1.0);
        holders[i].release = &rel;
        worker_start(&holders[i]);
        CHECK(wait_flag(&holders[i].acquired, SLACK));
    }
    for (int k = 0; k < PER; k++)
        for (int i = 0; i < DOMS; i++) {
            snprintf(apis[i][k], sizeof(apis[i][k]), "w%d", k);
            CHECK_INT(mj_begin_job(ds[i], k % 2 ? MJ_JOB_QUERY : MJ_JOB_MODIFY,
                                   apis[i][k], 10.0, 0), MJ_WAITING);
            ws[i][k] = mj_pending_detach(n);
        }
    atomic_store(&rel, 1);
    int total = 0;
    double limit = now_s() + 10.0;
    int fd = mj_notifier_fd(n);
    while (total < DOMS * PER && now_s() < limit) {
        if (!fd_wait_readable(fd, 0.2))
            continue;
        mj_waiter *w;
        while ((w = mj_notifier_take(n)) != NULL) {
            int di = -1, ki = -1;
            for (int i = 0; i < DOMS; i++)
                for (int k = 0; k < PER; k++)
                    if (ws[i][k] == w) {
                        di = i;
                        ki = k;
                    }
            if (di < 0) {
                H_FAIL("notifier listed an unknown waiter");
                continue;
            }
            int rc = mj_waiter_poll(w);
            ws[di][ki] = NULL;
            CHECKF(rc == 0, "waiter %d/%d: rc %d", di, ki, rc);
            if (rc != 0)
                continue;
            CHECKF(ki == served[di], "domain %d served waiter %d, expected %d",
                   di, ki, served[di]);
            CHECK_STR(mj_domain_owner_api(ds[di]), apis[di][ki]);
            served[di]++;
            total++;
            mj_end_job(ds[di]);    /* hands the slot to the next in line */
        }
    }
    CHECK_INT(total, DOMS * PER);
    for (int i = 0; i < DOMS; i++) {
        worker_join(&holders[i]);
        for (int k = 0; k < PER; k++)
            if (ws[i][k])
                mj_waiter_cancel(ws[i][k]);
        CHECK_INT(mj_domain_refs(ds[i]), 1);
        CHECK_INT(mj_domain_jobs_queued(ds[i]), 0);
        dispose(ds[i]);
    }
    mj_notifier_free(n);
}

/* ======================================================================== */
/* remove, cancel_waiters, pins                                             */

static void test_remove_fails_waiters(void)
{
    mj_domain *d = fresh("vm1", 10.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    worker ws[3];
    worker_init(&ws[0], d, W_SYNC, MJ_JOB_QUERY, "q", 10.0);
    worker_init(&ws[1], d, W_ASYNC, MJ_ASYNC_JOB_SAVE, "save", 10.0);
    worker_init(&ws[2], d, W_SYNC, MJ_JOB_DESTROY, "destroy", 10.0);
    for (int i = 0; i < 3; i++)
        worker_start_queued(&ws[i], 3 + i);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "sliced", 10.0, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_refs(d), 6);
    double t0 = now_s();
    /* the failed waiters may give their references back before remove
     * drops the list's */
    CHECK_RANGE(mj_domain_remove(d), 1, 5);
    for (int i = 0; i < 3; i++) {
        worker_join(&ws[i]);
        CHECK_INT(ws[i].rc, -1);
        CHECK_INT(ws[i].err, MJ_ERR_NO_DOMAIN);
        CHECK_STR(ws[i].msg, "no domain with matching name 'vm1'");
    }
    CHECK_RANGE(now_s() - t0, 0.0, SLACK);
    {
        mj_reset_last_error();
        CHECK_INT(mj_pending_wait(1.0), -1);
        CHECK_ERR(MJ_ERR_NO_DOMAIN, "no domain with matching name 'vm1'");
    }
    CHECK_INT(mj_domain_refs(d), 1);    /* only the held job's */
    CHECK(mj_domain_alive(d));
    /* later begins fail; the held job still ends */
    mj_reset_last_error();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_NO_DOMAIN, "no domain with matching name 'vm1'");
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_DUMP, "d", 1.0, 0), -1);
    CHECK_ERR(MJ_ERR_NO_DOMAIN, "no domain with matching name 'vm1'");
    CHECK_INT(mj_domain_remove(d), -1);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_MODIFY);
    CHECK_INT(mj_end_job(d), 0);
    CHECK(!mj_domain_alive(d));
    CHECK_INT(mj_domain_refs(d), 0);
    CHECK_STR(mj_domain_name(d), "vm1");
    mj_domain_unpin(d);

    /* a pending waiter keeps the domain (and its memory) while the
     * creator lets go of everything */
    d = fresh("vm2", 10.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "sliced", 10.0, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_remove(d), 2);
    CHECK_INT(mj_end_job(d), 1);
    mj_domain_unpin(d);        /* d must not be touched from here on */
    {
        CHECK_INT(mj_pending_wait(1.0), -1);
        CHECK_ERR(MJ_ERR_NO_DOMAIN, "no domain with matching name 'vm2'");
    }

    /* cancelling a waiter of a removed domain gives its reference back */
    d = fresh("vm3", 10.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "sliced", 10.0, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_remove(d), 2);
    mj_pending_cancel();
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_end_job(d), 0);
    mj_domain_unpin(d);
}

static void test_cancel_waiters(void)
{
    mj_domain *d = fresh("vm-cw", 10.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    worker ws[4];
    worker_init(&ws[0], d, W_SYNC, MJ_JOB_QUERY, "q", 10.0);
    worker_init(&ws[1], d, W_SYNC, MJ_JOB_MODIFY, "m", 10.0);
    worker_init(&ws[2], d, W_ASYNC, MJ_ASYNC_JOB_SAVE, "save", 10.0);
    worker_init(&ws[3], d, W_SYNC, MJ_JOB_DESTROY, "destroy", 10.0);
    for (int i = 0; i < 4; i++)
        worker_start_queued(&ws[i], 3 + i);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "sliced", 10.0, 0), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_refs(d), 7);
    CHECK_INT(mj_domain_jobs_queued(d), 6);
    double t0 = now_s();
    mj_domain_cancel_waiters(d, "shutdown");
    for (int i = 0; i < 4; i++) {
        worker_join(&ws[i]);
        CHECK_INT(ws[i].rc, -1);
        CHECK_INT(ws[i].err, MJ_ERR_OPERATION_ABORTED);
        CHECK_STR(ws[i].msg, "job wait cancelled: shutdown");
    }
    CHECK_RANGE(now_s() - t0, 0.0, SLACK);
    {
        CHECK_INT(mj_pending_wait(1.0), -1);
        CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    }
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK(mj_domain_alive(d));
    /* later begins fail the same way, even on a free slot */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    CHECK_INT(mj_end_job(d), 1);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "s", 1.0, 0), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN, "p", 1.0,
                                     -1, false, 0), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    CHECK_INT(mj_abort_job(d, "a", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);

    /* held async and nested jobs may still end; the nested begin of the
     * async owner fails like any other */
    d = fresh("vm-cw2", 10.0, 0, false);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "perform3",
                                     1.0, -1, false, 0), 0);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "mon", 1.0, -1), 0);
    mj_domain_cancel_waiters(d, "daemon stopping");
    CHECK_INT(mj_end_nested_job(d), 2);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "mon", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: daemon stopping");
    CHECK_INT(mj_migration_job_continue(d), 1);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_CONFIRM3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}

static void test_edge_cases(void)
{
    /* cancel_waiters: NULL reason, a reason too long to keep; a void call
     * that succeeds must not touch the last error */
    mj_domain *d = fresh("vm-edge", 5.0, 0, false);
    mj_reset_last_error();
    mj_domain_cancel_waiters(d, NULL);
    CHECK_ERR(MJ_ERR_OK, "");
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    dispose(d);

    d = fresh("vm-edge2", 5.0, 0, false);
    char *longreason = malloc(MJ_NAME_MAX + 100);
    memset(longreason, 'r', MJ_NAME_MAX + 99);
    longreason[MJ_NAME_MAX + 99] = '\0';
    mj_reset_last_error();
    mj_domain_cancel_waiters(d, longreason);
    CHECKF(mj_last_error_code() == MJ_ERR_OK,
           "cancel_waiters with a %d-byte reason left the last error %d \"%s\"",
           MJ_NAME_MAX + 99, mj_last_error_code(), mj_last_error_message());
    free(longreason);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_ABORTED);
    CHECK(strncmp(mj_last_error_message(), "job wait cancelled: ", 20) == 0);
    dispose(d);

    /* cancel_waiters on one domain leaves another alone */
    mj_domain *a = fresh("vm-edge-a", 5.0, 0, false);
    mj_domain *b = fresh("vm-edge-b", 5.0, 0, false);
    mj_domain_cancel_waiters(a, "a only");
    CHECK_INT(mj_begin_job(b, MJ_JOB_QUERY, "q", 1.0, -1), 0);
    CHECK_INT(mj_end_job(b), 1);
    dispose(a);
    dispose(b);

    /* NaN wait_for on the pending wait: refused, the waiter stays */
    d = fresh("vm-edge3", 5.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 5.0, 0), MJ_WAITING);
    mj_reset_last_error();
    CHECK_INT(mj_pending_wait(0.0 / 0.0), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_refs(d), 3);
    mj_pending_cancel();
    CHECK_INT(mj_domain_refs(d), 2);

    /* an infinite timeout is a deadline that never comes */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0 / 0.0, 0.01), MJ_WAITING);
    CHECK_INT(mj_pending_wait(0.01), MJ_WAITING);
    CHECK_INT(mj_pending_count(), 1);
    mj_pending_cancel();
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 1e300, 0.0), MJ_WAITING);
    mj_pending_cancel();
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_end_job(d), 1);

    /* abort through a sliced wait: the grant applies the abort inside
     * mj_pending_wait, so the caller never holds the ABORT job */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "perform3",
                                     1.0, -1, false, 0), 0);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "m", 1.0, -1), 0);
    CHECK_INT(mj_abort_job(d, "abort", 5.0, 0), MJ_WAITING);
    CHECK(!mj_domain_abort_requested(d));
    CHECK_INT(mj_end_nested_job(d), 3);
    CHECK_INT(mj_pending_wait(1.0), 0);
    CHECK(mj_domain_abort_requested(d));
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 2);
    /* abort_apply without holding the ABORT job changes nothing */
    CHECK_INT(mj_abort_apply(d), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_INVALID);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);

    /* strict phases: a refused StartPhase still took its reference */
    d = fresh("vm-edge4", 5.0, 0, true);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "b", 1.0,
                                     -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM3, NULL), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_continue(d), 1);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_BEGIN3, NULL), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR,
              "migration protocol going backwards perform3 => begin3");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_PERFORM3);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}

typedef struct {
    mj_domain *d;
    atomic_int *go;
    atomic_int *ok;
} pin_arg;

static void *pin_reader(void *arg)
{
    pin_arg *a = arg;
    /* the pin was taken for us by the creator before we started */
    while (!atomic_load(a->go))
        (void)mj_domain_refs(a->d);
    /* by now the domain is dead and the creator has unpinned it */
    int good = strcmp(mj_domain_name(a->d), "vm-pin") == 0 &&
               mj_domain_refs(a->d) == 0 && !mj_domain_alive(a->d) &&
               mj_begin_job(a->d, MJ_JOB_QUERY, "q", 1.0, -1) == -1 &&
               mj_last_error_code() == MJ_ERR_NO_DOMAIN;
    atomic_store(a->ok, good);
    mj_domain_unpin(a->d);
    return NULL;
}

static void expect_no_domain(int rc, const char *what, const char *name)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "no domain with matching name '%s'", name);
    CHECKF(rc == -1, "%s on a dead domain returned %d", what, rc);
    CHECKF(mj_last_error_code() == MJ_ERR_NO_DOMAIN &&
           strcmp(mj_last_error_message(), msg) == 0,
           "%s on a dead domain: error %d \"%s\"", what, mj_last_error_code(),
           mj_last_error_message());
    mj_reset_last_error();
}

static void test_pins_and_dead_domain(void)
{
    mj_domain *d = fresh("vm-dead", 1.0, 0, false);
    mj_domain_pin(d);
    CHECK_INT(mj_domain_refs(d), 1);   /* pins never show in refs */
    CHECK_INT(mj_domain_remove(d), 0);
    CHECK(!mj_domain_alive(d));
    CHECK_INT(mj_domain_refs(d), 0);
    mj_domain_unpin(d);
    /* still pinned once: every call is safe, every op fails NO_DOMAIN */
    CHECK_STR(mj_domain_name(d), "vm-dead");
    CHECK_INT(mj_domain_refs(d), 0);
    CHECK(!mj_domain_alive(d));
    mj_reset_last_error();
    expect_no_domain(mj_domain_ref(d), "ref", "vm-dead");
    expect_no_domain(mj_domain_unref(d), "unref", "vm-dead");
    expect_no_domain(mj_domain_remove(d), "remove", "vm-dead");
    expect_no_domain(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), "begin_job", "vm-dead");
    expect_no_domain(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, 0), "sliced begin_job", "vm-dead");
    expect_no_domain(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "s", 1.0, -1),
                     "begin_async_job", "vm-dead");
    expect_no_domain(mj_begin_nested_job(d, MJ_ASYNC_JOB_SAVE, "n", 1.0, -1),
                     "begin_nested_job", "vm-dead");
    expect_no_domain(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "b",
                                            1.0, -1, false, 0),
                     "migration_job_start", "vm-dead");
    expect_no_domain(mj_end_job(d), "end_job", "vm-dead");
    expect_no_domain(mj_end_nested_job(d), "end_nested_job", "vm-dead");
    expect_no_domain(mj_end_async_job(d), "end_async_job", "vm-dead");
    expect_no_domain(mj_set_async_job_mask(d, 0), "set_async_job_mask", "vm-dead");
    expect_no_domain(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, NULL),
                     "migration_job_set_phase", "vm-dead");
    expect_no_domain(mj_migration_job_start_phase(d, MJ_PHASE_BEGIN3, NULL),
                     "migration_job_start_phase", "vm-dead");
    expect_no_domain(mj_migration_job_continue(d), "migration_job_continue", "vm-dead");
    expect_no_domain(mj_migration_job_finish(d), "migration_job_finish", "vm-dead");
    expect_no_domain(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_OUT),
                     "check_migration_job", "vm-dead");
    expect_no_domain(mj_abort_job(d, "a", 1.0, -1), "abort_job", "vm-dead");
    expect_no_domain(mj_abort_apply(d), "abort_apply", "vm-dead");
    expect_no_domain(mj_check_abort(d), "check_abort", "vm-dead");
    CHECK(!mj_migration_job_is_active(d, MJ_ASYNC_JOB_MIGRATION_OUT));
    /* each getter says it in one call: a sentinel and the NO_DOMAIN error */
    expect_no_domain(mj_domain_active_job(d), "active_job", "vm-dead");
    expect_no_domain(mj_domain_async_job(d), "async_job", "vm-dead");
    expect_no_domain(mj_domain_phase(d), "phase", "vm-dead");
    expect_no_domain(mj_domain_jobs_queued(d), "jobs_queued", "vm-dead");
    expect_no_domain(mj_domain_job_info_type(d), "job_info_type", "vm-dead");
    expect_no_domain((int)mj_domain_job_elapsed(d), "job_elapsed", "vm-dead");
    expect_no_domain(mj_domain_abort_requested(d), "abort_requested", "vm-dead");
    expect_no_domain(mj_domain_mask(d) == MJ_DEAD_U64 ? -1 : 0, "mask", "vm-dead");
    expect_no_domain(mj_domain_owner_thread(d) == MJ_DEAD_U64 ? -1 : 0, "owner_thread",
                     "vm-dead");
    expect_no_domain(mj_domain_async_owner_thread(d) == MJ_DEAD_U64 ? -1 : 0,
                     "async_owner_thread", "vm-dead");
    expect_no_domain(mj_domain_owner_api(d) == NULL ? -1 : 0, "owner_api", "vm-dead");
    expect_no_domain(mj_domain_async_owner_api(d) == NULL ? -1 : 0, "async_owner_api",
                     "vm-dead");
    mj_domain_cancel_waiters(d, "late");
    CHECK_INT(mj_domain_refs(d), 0);
    mj_domain_unpin(d);

    /* memory outlives refs while another thread holds a pin */
    d = fresh("vm-pin", 1.0, 0, false);
    atomic_int go, ok;
    atomic_init(&go, 0);
    atomic_init(&ok, 0);
    pin_arg pa = { d, &go, &ok };
    pthread_t th;
    mj_domain_pin(d);
    pthread_create(&th, NULL, pin_reader, &pa);
    CHECK_INT(mj_domain_remove(d), 0);
    mj_domain_unpin(d);
    atomic_store(&go, 1);
    pthread_join(th, NULL);
    CHECK_INT(atomic_load(&ok), 1);

    /* a blocking begin pins the domain: the creator may drop everything
     * while it waits (ASan checks the memory) */
    for (int i = 0; i < 40; i++) {
        d = fresh("vm-pinrace", 10.0, 0, false);
        CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
        worker w;
        worker_init(&w, d, W_SYNC, i % 2 ? MJ_JOB_QUERY : MJ_JOB_DESTROY,
                    "waiter", 10.0);
        worker_start_queued(&w, 3);
        CHECK_RANGE(mj_domain_remove(d), 1, 2);
        if (i % 3 == 0)
            sleep_s(0.001);
        mj_end_job(d);
        mj_domain_unpin(d);
        worker_join(&w);
        CHECK_INT(w.rc, -1);
        CHECK_INT(w.err, MJ_ERR_NO_DOMAIN);
    }
}

/* ======================================================================== */
/* stress                                                                   */

#define STRESS_MAX_DOMS 4

typedef struct {
    mj_domain *ds[STRESS_MAX_DOMS];
    atomic_int *holders_of[STRESS_MAX_DOMS];   /* per domain */
    int nd;
    int id;
    double until;
    bool limited;           /* max_queued set: QueueFull is acceptable */
    bool chaos;             /* domains get removed / cancelled meanwhile */
    atomic_long *violations;
    /* the domain of the current operation */
    mj_domain *d;
    atomic_int *holders;
    mj_notifier *notifier;  /* this thread's event loop */
    long n_sync, n_async, n_nested, n_sliced, n_notified, n_abort, n_fail_ok;
} stress_arg;

#define VIOLATION(a, ...)                                                  \
    do {                                                                   \
        if (atomic_fetch_add((a)->violations, 1) < 20)                     \
            H_FAIL(__VA_ARGS__);                                           \
    } while (0)

/* errors a domain that is removed or shut down produces, in chaos mode */
static bool chaos_error(stress_arg *a)
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
    if (a->limited && code == MJ_ERR_OPERATION_FAILED &&
        strstr(msg, "due to max_queued limit") != NULL) {
        a->n_fail_ok++;
        return;
    }
    if (chaos_error(a)) {
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
                  mj_job_to_string(k), job_label(as), (unsigned long long)m);
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
        want_mask = k == MJ_ASYNC_JOB_MIGRATION_IN ? 0x02 : 0x37;
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
        VIOLATION(a, "async job is not %s", job_label(k));
    if (mj_domain_async_owner_thread(a->d) != self_id())
        VIOLATION(a, "async owner is not us");
    uint64_t mask = mj_domain_mask(a->d);
    if (mask != want_mask)
        VIOLATION(a, "async %s mask 0x%llx, expected 0x%llx", job_label(k),
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
                      mj_job_to_string(act), job_label(k),
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
            if (sp == -1 && chaos_error(a))
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
        snprintf(expect, sizeof(expect), "%s: canceled by client", job_label(k));
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
    mj_waiter *w = mj_pending_detach(a->notifier);
    if (!w) {
        VIOLATION(a, "pending_detach returned NULL");
        return -1;
    }
    a->n_notified++;
    int fd = mj_notifier_fd(a->notifier);
    bool cancel_early = rand_r(seed) % 4 == 0;
    for (int spins = 0;; spins++) {
        if (cancel_early && spins == 1) {
            mj_waiter_cancel(w);
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
        int rc = mj_waiter_poll(w);
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
        } else {
            int r = mj_domain_ref(a->d);
            if (r < 0 && chaos_error(a))
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
} stress_totals;

/* run `threads` threads of random operations over ds[0..nd) */
static stress_totals run_threads(mj_domain **ds, int nd, int threads,
                                 double seconds, bool limited, bool chaos,
                                 atomic_long *violations,
                                 void (*meanwhile)(mj_domain **, int, double))
{
    pthread_t *th = calloc((size_t)threads, sizeof(*th));
    stress_arg *args = calloc((size_t)threads, sizeof(*args));
    atomic_int holders[STRESS_MAX_DOMS];
    stress_totals t = { 0 };
    double start = now_s();
    for (int i = 0; i < nd; i++)
        atomic_init(&holders[i], 0);
    for (int i = 0; i < threads; i++) {
        args[i].nd = nd;
        for (int j = 0; j < nd; j++) {
            args[i].ds[j] = ds[j];
            args[i].holders_of[j] = &holders[j];
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
    }
    free(th);
    free(args);
    return t;
}

static void print_totals(const char *name, int threads, double seconds,
                         stress_totals t)
{
    fprintf(stderr, "    %s: %d threads %.1fs: %ld sync, %ld async, %ld nested, "
            "%ld sliced (%ld via notifier), %ld aborts, %ld expected "
            "failures\n", name, threads, seconds, t.n_sync, t.n_async,
            t.n_nested, t.n_sliced, t.n_notified, t.n_abort, t.n_fail);
}

static void check_at_rest(mj_domain *d)
{
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_NONE);
    CHECK_INT(mj_domain_owner_thread(d), 0);
    CHECK_INT(mj_domain_async_owner_thread(d), 0);
    CHECK(!mj_domain_abort_requested(d));
    CHECK_HEX(mj_domain_mask(d), MJ_DEFAULT_JOB_MASK);
}

static void run_stress(const char *name, int threads, double seconds,
                       unsigned int max_queued)
{
    mj_domain *d = fresh(name, 1.0, max_queued, false);
    atomic_long violations;
    atomic_init(&violations, 0);
    stress_totals t = run_threads(&d, 1, threads, seconds, max_queued > 0,
                                  false, &violations, NULL);
    print_totals(name, threads, seconds, t);
    CHECK_INT(atomic_load(&violations), 0);
    CHECK(t.n_sync > 0);
    CHECK(t.n_async > 0);
    CHECK(t.n_nested > 0);
    CHECK(t.n_sliced > 0);
    /* everything given back */
    check_at_rest(d);
    /* and the domain still works */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "after", 1.0, -1), 0);
    CHECK_INT(mj_end_job(d), 1);
    CHECK_INT(mj_domain_remove(d), 0);
    mj_domain_unpin(d);
}

static void test_stress(void)
{
    run_stress("vm-stress", 32, 1.0, 0);
}

static void test_stress_max_queued(void)
{
    run_stress("vm-stress-mq", 16, 0.5, 4);
}

/* while the threads run: remove ds[0] at 0.3 s, shut ds[1]'s waiters down
 * at 0.4 s, remove ds[2] at 0.6 s; ds[3] is left alone */
static void chaos_meanwhile(mj_domain **ds, int nd, double start)
{
    (void)nd;
    sleep_s(start + 0.3 - now_s());
    CHECK(mj_domain_remove(ds[0]) >= 0);
    sleep_s(start + 0.4 - now_s());
    mj_domain_cancel_waiters(ds[1], "shutdown");
    sleep_s(start + 0.6 - now_s());
    CHECK(mj_domain_remove(ds[2]) >= 0);
}

static void test_stress_lifecycle(void)
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
    stress_totals t = run_threads(ds, ND, T, 1.0, false, true, &violations,
                                  chaos_meanwhile);
    print_totals("vm-chaos", T, 1.0, t);
    CHECK_INT(atomic_load(&violations), 0);
    /* removed domains are dead once every job ended */
    CHECK_INT(mj_domain_refs(ds[0]), 0);
    CHECK(!mj_domain_alive(ds[0]));
    CHECK_INT(mj_domain_refs(ds[2]), 0);
    /* the shut-down one refuses begins but is otherwise at rest */
    check_at_rest(ds[1]);
    CHECK_INT(mj_begin_job(ds[1], MJ_JOB_QUERY, "q", 1.0, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_ABORTED, "job wait cancelled: shutdown");
    check_at_rest(ds[3]);
    CHECK_INT(mj_domain_remove(ds[1]), 0);
    CHECK_INT(mj_domain_remove(ds[3]), 0);
    for (int i = 0; i < ND; i++)
        for (int k = 0; k <= T; k++)
            mj_domain_unpin(ds[i]);        /* the threads' and ours */
}

/* ======================================================================== */
/* runner                                                                   */

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

static const test_case tests[] = {
    { "enum_job", test_enum_job },
    { "enum_async_job", test_enum_async_job },
    { "enum_phase", test_enum_phase },
    { "enum_job_info_type", test_enum_job_info_type },
    { "async_job_phase_dispatch", test_async_job_phase_dispatch },
    { "constants", test_constants },
    { "error_basics", test_error_basics },
    { "error_invalid_job", test_error_invalid_job },
    { "error_end_without_job", test_error_end_without_job },
    { "error_nested_wrong_async", test_error_nested_wrong_async },
    { "error_check_migration", test_error_check_migration },
    { "phases", test_phases },
    { "refs_basic", test_refs_basic },
    { "refs_v3_change_protection", test_refs_v3_change_protection },
    { "refs_destination", test_refs_destination },
    { "refs_v3_no_change_protection", test_refs_v3_no_change_protection },
    { "refs_v2_and_p2p", test_refs_v2_and_p2p },
    { "refs_start_phase_refused", test_refs_start_phase_refused },
    { "refs_domain_disappeared", test_refs_domain_disappeared },
    { "refused_phase_changes_no_owner", test_refused_phase_changes_no_owner },
    { "masks", test_masks },
    { "owners_and_info", test_owners_and_info },
    { "jobs_queued", test_jobs_queued },
    { "max_queued", test_max_queued },
    { "timeouts", test_timeouts },
    { "deadline_across_slices", test_deadline_across_slices },
    { "abort", test_abort },
    { "wake_all_waiters", test_wake_all_waiters },
    { "many_waiters_cycles", test_many_waiters_cycles },
    { "fifo_order", test_fifo_order },
    { "mask_blocked_does_not_block_allowed",
      test_mask_blocked_does_not_block_allowed },
    { "end_async_wakes", test_end_async_wakes },
    { "async_sync_race", test_async_sync_race },
    { "nested_interleaving", test_nested_interleaving },
    { "sliced_waits", test_sliced_waits },
    { "pending_stack", test_pending_stack },
    { "notifier_basics", test_notifier_basics },
    { "notifier_event_loop", test_notifier_event_loop },
    { "remove_fails_waiters", test_remove_fails_waiters },
    { "cancel_waiters", test_cancel_waiters },
    { "pins_and_dead_domain", test_pins_and_dead_domain },
    { "edge_cases", test_edge_cases },
    { "stress", test_stress },
    { "stress_max_queued", test_stress_max_queued },
    { "stress_lifecycle", test_stress_lifecycle },
};

static void on_alarm(int sig)
{
    static const char msg1[] = "\nFAIL: watchdog: test '";
    static const char msg2[] = "' hung (deadlock or lost wake-up?)\n";
    ssize_t r;
    (void)sig;
    r = write(2, msg1, sizeof(msg1) - 1);
    r = write(2, h_current_test, strlen(h_current_test));
    r = write(2, msg2, sizeof(msg2) - 1);
    (void)r;
    _exit(3);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int ran = 0, failed_tests = 0;
    double t_all = now_s();
    signal(SIGALRM, on_alarm);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (filter && !strstr(tests[i].name, filter))
            continue;
        long f0 = atomic_load(&h_failed), p0 = atomic_load(&h_passed);
        h_current_test = tests[i].name;
        alarm(TEST_WATCHDOG_S);
        double t0 = now_s();
        tests[i].fn();
        alarm(0);
        long nf = atomic_load(&h_failed) - f0;
        long np = atomic_load(&h_passed) - p0;
        ran++;
        if (nf)
            failed_tests++;
        printf("%-4s %-40s %5ld checks  %7.3fs\n", nf ? "FAIL" : "ok",
               tests[i].name, np + nf, now_s() - t0);
    }
    h_current_test = "(end)";
    printf("%d tests, %d failed, %.2fs\n", ran, failed_tests, now_s() - t_all);
    long passed = atomic_load(&h_passed), failed = atomic_load(&h_failed);
    printf("%ld passed, %ld failed\n", passed, failed);
    if (ran == 0) {
        fprintf(stderr, "no test matches '%s'\n", filter ? filter : "");
        return 2;
    }
    return failed ? 1 : 0;
}
