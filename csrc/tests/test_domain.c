/*
 * test_domain.c: refs, getters (owners, job info), removal, pins and dead
 * domains (the enums are test_enums.c's, the errors test_errors.c's)
 *
 * Part of the C test program; build and run with
 * csrc/tests/run.sh [plain|thread|address] [filter].
 */
#define _POSIX_C_SOURCE 200809L

#include "helpers.h"

#include <stdlib.h>

/* ======================================================================== */
/* refcounts (docs/api.md: the seed's reference rules)                     */

void test_refs_basic(void)
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

/* ======================================================================== */
/* owners, job info                                                         */

static void *dom_start_phase_thread(void *arg)
{
    mj_domain *d = arg;
    uint64_t *out = malloc(2 * sizeof(*out));
    out[0] = (uint64_t)mj_migration_job_start_phase(d, MJ_PHASE_PERFORM3,
                                                     "perform3");
    out[1] = mj_domain_async_owner_thread(d) == self_id();
    mj_migration_job_continue(d);
    return out;
}

void test_owners_and_info(void)
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
    pthread_create(&th, NULL, dom_start_phase_thread, d);
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
/* remove, pins                                                             */

void test_remove_fails_waiters(void)
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



typedef struct {
    mj_domain *d;
    atomic_int *go;
    atomic_int *ok;
} dom_pin_arg;

static void *dom_pin_reader(void *arg)
{
    dom_pin_arg *a = arg;
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

static void dom_expect_no_domain(int rc, const char *what, const char *name)
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

void test_pins_and_dead_domain(void)
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
    dom_expect_no_domain(mj_domain_ref(d), "ref", "vm-dead");
    dom_expect_no_domain(mj_domain_unref(d), "unref", "vm-dead");
    dom_expect_no_domain(mj_domain_remove(d), "remove", "vm-dead");
    dom_expect_no_domain(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, -1), "begin_job", "vm-dead");
    dom_expect_no_domain(mj_begin_job(d, MJ_JOB_QUERY, "q", 1.0, 0), "sliced begin_job", "vm-dead");
    dom_expect_no_domain(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "s", 1.0, -1),
                         "begin_async_job", "vm-dead");
    dom_expect_no_domain(mj_begin_nested_job(d, MJ_ASYNC_JOB_SAVE, "n", 1.0, -1),
                         "begin_nested_job", "vm-dead");
    dom_expect_no_domain(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "b",
                                                1.0, -1, false, 0),
                         "migration_job_start", "vm-dead");
    dom_expect_no_domain(mj_end_job(d), "end_job", "vm-dead");
    dom_expect_no_domain(mj_end_nested_job(d), "end_nested_job", "vm-dead");
    dom_expect_no_domain(mj_end_async_job(d), "end_async_job", "vm-dead");
    dom_expect_no_domain(mj_set_async_job_mask(d, 0), "set_async_job_mask", "vm-dead");
    dom_expect_no_domain(mj_migration_job_set_phase(d, MJ_PHASE_BEGIN3, NULL),
                         "migration_job_set_phase", "vm-dead");
    dom_expect_no_domain(mj_migration_job_start_phase(d, MJ_PHASE_BEGIN3, NULL),
                         "migration_job_start_phase", "vm-dead");
    dom_expect_no_domain(mj_migration_job_continue(d), "migration_job_continue", "vm-dead");
    dom_expect_no_domain(mj_migration_job_finish(d), "migration_job_finish", "vm-dead");
    dom_expect_no_domain(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_OUT),
                         "check_migration_job", "vm-dead");
    dom_expect_no_domain(mj_abort_job(d, "a", 1.0, -1), "abort_job", "vm-dead");
    dom_expect_no_domain(mj_abort_apply(d), "abort_apply", "vm-dead");
    dom_expect_no_domain(mj_check_abort(d), "check_abort", "vm-dead");
    CHECK(!mj_migration_job_is_active(d, MJ_ASYNC_JOB_MIGRATION_OUT));
    /* each getter says it in one call: a sentinel and the NO_DOMAIN error */
    dom_expect_no_domain(mj_domain_active_job(d), "active_job", "vm-dead");
    dom_expect_no_domain(mj_domain_async_job(d), "async_job", "vm-dead");
    dom_expect_no_domain(mj_domain_phase(d), "phase", "vm-dead");
    dom_expect_no_domain(mj_domain_jobs_queued(d), "jobs_queued", "vm-dead");
    dom_expect_no_domain(mj_domain_job_info_type(d), "job_info_type", "vm-dead");
    dom_expect_no_domain((int)mj_domain_job_elapsed(d), "job_elapsed", "vm-dead");
    dom_expect_no_domain(mj_domain_abort_requested(d), "abort_requested", "vm-dead");
    dom_expect_no_domain(mj_domain_mask(d) == MJ_DEAD_U64 ? -1 : 0, "mask", "vm-dead");
    dom_expect_no_domain(mj_domain_owner_thread(d) == MJ_DEAD_U64 ? -1 : 0, "owner_thread",
                         "vm-dead");
    dom_expect_no_domain(mj_domain_async_owner_thread(d) == MJ_DEAD_U64 ? -1 : 0,
                         "async_owner_thread", "vm-dead");
    dom_expect_no_domain(mj_domain_owner_api(d) == NULL ? -1 : 0, "owner_api", "vm-dead");
    dom_expect_no_domain(mj_domain_async_owner_api(d) == NULL ? -1 : 0, "async_owner_api",
                         "vm-dead");
    mj_domain_cancel_waiters(d, "late");
    CHECK_INT(mj_domain_refs(d), 0);
    mj_domain_unpin(d);

    /* memory outlives refs while another thread holds a pin */
    d = fresh("vm-pin", 1.0, 0, false);
    atomic_int go, ok;
    atomic_init(&go, 0);
    atomic_init(&ok, 0);
    dom_pin_arg pa = { d, &go, &ok };
    pthread_t th;
    mj_domain_pin(d);
    pthread_create(&th, NULL, dom_pin_reader, &pa);
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
