/*
 * test_review.c: the core defects review found, each as it must behave
 * now: an expired waiter is never handed a slot, what an interrupted begin
 * left is given back (its own, never another begin's), errors are a stack
 * per thread, and refs stop at MJ_REFS_MAX.
 */
#include "helpers.h"
#include "testing.h"

#include <string.h>

static mj_domain *review_dom;

static void *review_stale_waiter(void *arg)
{
    int *rc = arg;

    *rc = mj_begin_job(review_dom, MJ_JOB_QUERY, "stale", 0.1, 0);  /* queued first */
    sleep_s(0.6);                                  /* its owner is busy */
    if (*rc == MJ_WAITING)
        *rc = mj_pending_wait(0);
    if (*rc == 0)
        mj_end_job(review_dom);
    return NULL;
}

static void *review_live_waiter(void *arg)
{
    double *took = arg;
    double t0 = now_s();
    int rc;

    sleep_s(0.05);
    rc = mj_begin_job(review_dom, MJ_JOB_QUERY, "live", 1.0, -1);
    *took = rc == 0 ? now_s() - t0 : -1.0;
    if (rc == 0)
        mj_end_job(review_dom);
    return NULL;
}

void test_expired_waiter_passed_over(void)
{
    pthread_t a, b;
    int stale_rc = 0;
    double live_took = 0;

    review_dom = fresh("vm", -1, 0, false);
    CHECK_INT(mj_begin_job(review_dom, MJ_JOB_MODIFY, "holder", -1, -1), 0);
    pthread_create(&a, NULL, review_stale_waiter, &stale_rc);
    pthread_create(&b, NULL, review_live_waiter, &live_took);
    sleep_s(0.2);
    mj_end_job(review_dom);                       /* free after the stale deadline */
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    CHECK_INT(stale_rc, -1);
    CHECKF(live_took > 0 && live_took < 0.2 + SLACK * 0.1, "live took %.3f", live_took);
    CHECK_INT(mj_domain_refs(review_dom), 1);
    CHECK_INT(mj_domain_jobs_queued(review_dom), 0);
    mj_domain_remove(review_dom);
    mj_domain_unpin(review_dom);
}

void test_abandon_gives_back_its_own(void)
{
    mj_domain *d = fresh("vm", 5, 0, false);
    mj_domain *e = fresh("vm2", 5, 0, false);

    /* a grant is given back; the note closes, so a second call does nothing */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, NULL, -1, -1), 0);
    mj_begin_abandon(d, false);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 1);
    mj_begin_abandon(d, false);
    CHECK_INT(mj_domain_refs(d), 1);

    /* an older grant in the other slot is not this begin's */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, NULL, -1, -1), 0);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, NULL, -1, -1), 0);
    mj_begin_abandon(d, false);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_MIGRATION_OUT);
    CHECK_INT(mj_domain_refs(d), 2);

    /* a job ended from this thread is not given back again */
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, NULL, -1, -1), 0);
    CHECK_INT(mj_end_nested_job(d), 2);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, NULL, -1, -1), 0);   /* a later grant */
    mj_begin_abandon(d, false);                   /* QUERY's, the newest */
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_end_async_job(d), 1);

    /* a failed begin's note stops the search: the held job stays */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, NULL, -1, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, NULL, 0, -1), -1);  /* times out */
    mj_begin_abandon(d, false);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_MODIFY);
    CHECK_INT(mj_end_job(d), 1);

    /* a queued waiter: only this begin's, not an outer one (a handler's
     * begin on another domain between) */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", -1, -1), 0);
    CHECK_INT(mj_begin_job(e, MJ_JOB_MODIFY, "holder", -1, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "outer", -1, 0), MJ_WAITING);
    CHECK_INT(mj_begin_job(e, MJ_JOB_QUERY, "inner", 0, 0), -1);  /* fails */
    mj_begin_abandon(e, false);                   /* the inner's own: nothing */
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    mj_begin_abandon(d, false);                   /* the outer's: leaves the queue */
    CHECK_INT(mj_pending_count(), 0);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_end_job(d), 1);
    CHECK_INT(mj_end_job(e), 1);

    /* an AbortJob applied at once left nothing: abandon after it must not
     * reach an older waiter (a mask-blocked begin, still queued) */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_DUMP, NULL, -1, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_SUSPEND, NULL, -1, 0), MJ_WAITING);
    CHECK_INT(mj_abort_job(d, NULL, -1, -1), 0);
    mj_begin_abandon(d, false);
    CHECK_INT(mj_pending_count(), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    mj_pending_cancel();
    CHECK_INT(mj_end_async_job(d), 1);

    /* a grant through mj_pending_wait */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", -1, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, NULL, -1, 0), MJ_WAITING);
    CHECK_INT(mj_end_job(d), 2);                  /* handed to the waiter */
    CHECK_INT(mj_pending_wait(0), 0);
    mj_begin_abandon(d, false);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);

    mj_domain_remove(d);
    mj_domain_unpin(d);
    mj_domain_remove(e);
    mj_domain_unpin(e);
}

void test_errors_are_a_stack(void)
{
    mj_domain *d = fresh("vm", 5, 0, false);
    char buf[MJ_ERROR_MAX];

    mj_reset_last_error();
    CHECK_INT(mj_error_take(buf, sizeof(buf)), MJ_ERR_OK);
    CHECK(strcmp(buf, "") == 0);
    CHECK_INT(mj_check_migration_job(d, MJ_ASYNC_JOB_MIGRATION_OUT), -1);
    CHECK_INT(mj_end_job(d), -1);                 /* as if from a signal handler */
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_INVALID);
    CHECK(strcmp(mj_last_error_message(), "no job is active on the domain") == 0);
    CHECK_INT(mj_error_take(buf, sizeof(buf)), MJ_ERR_OPERATION_INVALID);
    CHECK(strcmp(buf, "no job is active on the domain") == 0);
    CHECK_INT(mj_error_take(buf, sizeof(buf)), MJ_ERR_OPERATION_INVALID);
    CHECK(strcmp(buf, "domain 'vm' is not being migrated") == 0);
    CHECK_INT(mj_error_take(buf, 4), MJ_ERR_OK);
    for (int i = 0; i < 40; i++)                  /* the oldest fall off */
        mj_end_job(d);
    CHECK_INT(mj_error_take(buf, 4), MJ_ERR_OPERATION_INVALID);
    CHECK(strcmp(buf, "no ") == 0);               /* cut to the buffer */
    mj_reset_last_error();
    CHECK_INT(mj_last_error_code(), MJ_ERR_OK);
    mj_domain_remove(d);
    mj_domain_unpin(d);
}

void test_refs_limit(void)
{
    mj_domain *d = fresh("vm", 5, 0, false);

    CHECK_INT(mj_testing_set_refs(d, MJ_REFS_MAX - 1), 0);
    CHECK_INT(mj_domain_ref(d), MJ_REFS_MAX);
    CHECK_INT(mj_domain_ref(d), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_FAILED);
    CHECK(strstr(mj_last_error_message(), "the most it can count") != NULL);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, NULL, -1, -1), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_FAILED);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), MJ_REFS_MAX);
    CHECK_INT(mj_testing_set_refs(d, 1), 0);
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, NULL, -1, -1), 0);
    CHECK_INT(mj_migration_job_continue(d), 1);   /* parked */
    CHECK_INT(mj_testing_set_refs(d, MJ_REFS_MAX), 0);
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_PERFORM3, NULL), -1);
    CHECK_INT(mj_migration_job_claim_parked(d, MJ_ASYNC_JOB_MIGRATION_OUT, MJ_PHASE_NONE,
                                            MJ_PHASE_PERFORM3, NULL), -1);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_NONE);
    CHECK_INT(mj_testing_set_refs(d, 2), 0);
    CHECK_INT(mj_migration_job_finish(d), 1);
    mj_domain_remove(d);
    mj_domain_unpin(d);
}
