/*
 * test_agent.c: the agent slot, nowait begins, the hand-off on a wider
 * mask, and domain uuids (libvirt 11)
 *
 * Part of the C test program; build and run with
 * csrc/tests/run.sh [plain|thread|address] [filter].
 */
#define _POSIX_C_SOURCE 200809L

#include "helpers.h"
#include "internal.h"   /* mj_job_handoff_locked, for callers outside job.c */

#define AGENT_UUID "0ac1d5d2-36c4-4e39-8f5a-6bb2a0b1c3d4"

static void
agent_check_error(int code, const char *text)
{
    CHECK_INT(mj_last_error_code(), code);
    CHECK_STR(mj_last_error_message(), text);
    mj_reset_last_error();
}

void test_agent_slot(void)
{
    mj_domain *d = fresh("vm-agent", 5.0, 0, false);

    CHECK_STR(mj_agent_job_to_string(MJ_AGENT_JOB_MODIFY), "modify");
    CHECK_INT(mj_agent_job_from_string("query"), MJ_AGENT_JOB_QUERY);
    CHECK_STR(mj_agent_job_to_string(MJ_AGENT_JOB_LAST), NULL);

    /* independent of the sync slot, both ways; each takes a reference */
    CHECK_INT(mj_begin_agent_job(d, MJ_AGENT_JOB_QUERY, "agentA", 1.0, -1), 0);
    CHECK_INT(mj_domain_agent_job(d), MJ_AGENT_JOB_QUERY);
    CHECK_STR(mj_domain_agent_owner_api(d), "agentA");
    CHECK_HEX(mj_domain_agent_owner_thread(d), self_id());
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "mon", 1.0, -1), 0);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_domain_jobs_queued(d), 2);

    /* the agent slot is taken: an agent waiter times out naming it */
    CHECK_INT(mj_begin_agent_job(d, MJ_AGENT_JOB_MODIFY, NULL, 0.05, -1), -1);
    agent_check_error(MJ_ERR_OPERATION_TIMEOUT,
                      "cannot acquire state change lock (held by agent=agentA)");
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_end_agent_job(d), 2);
    CHECK_STR(mj_domain_agent_owner_api(d), NULL);
    CHECK_INT(mj_end_agent_job(d), -1);
    agent_check_error(MJ_ERR_OPERATION_INVALID, "no agent job is active on the domain");

    /* bare text without an API */
    CHECK_INT(mj_begin_agent_job(d, MJ_AGENT_JOB_MODIFY, NULL, 1.0, -1), 0);
    CHECK_INT(mj_begin_agent_job(d, MJ_AGENT_JOB_QUERY, "x", 0.0, -1), -1);
    agent_check_error(MJ_ERR_OPERATION_TIMEOUT, "cannot acquire state change lock");
    CHECK_INT(mj_end_agent_job(d), 2);
    CHECK_INT(mj_end_job(d), 1);

    /* bad kinds change nothing */
    CHECK_INT(mj_begin_agent_job(d, MJ_AGENT_JOB_NONE, NULL, 1.0, -1), -1);
    agent_check_error(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");
    CHECK_INT(mj_begin_agent_job(d, 3, NULL, 1.0, -1), -1);
    agent_check_error(MJ_ERR_INVALID_ARG, "invalid agent job 3");
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);
}

void test_agent_ignores_mask(void)
{
    mj_domain *d = fresh("vm-agent-mask", 5.0, 0, false);

    /* an incoming migration allows nothing but DESTROY and MODIFY_MIGRATION_SAFE */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN, "prepare",
                                     1.0, -1, false, 0), 0);
    CHECK_INT(mj_begin_agent_job(d, MJ_AGENT_JOB_MODIFY, "fsfreeze", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "stats", 0.05, -1), -1);
    agent_check_error(MJ_ERR_OPERATION_TIMEOUT,
                      "cannot acquire state change lock (held by monitor=prepare)");
    CHECK_INT(mj_end_agent_job(d), 2);
    CHECK_INT(mj_end_async_job(d), 1);
    dispose(d);
}

void test_agent_fifo_across_slots(void)
{
    mj_domain *d = fresh("vm-agent-fifo", 5.0, 0, false);

    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "mon", 1.0, -1), 0);
    CHECK_INT(mj_begin_agent_job(d, MJ_AGENT_JOB_MODIFY, "ga", 1.0, -1), 0);
    /* an older sync waiter, then an agent waiter, both pending here */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 5.0, 0), MJ_WAITING);
    CHECK_INT(mj_begin_agent_job(d, MJ_AGENT_JOB_QUERY, "gq", 5.0, 0), MJ_WAITING);
    CHECK_INT(mj_domain_jobs_queued(d), 4);
    /* the agent slot frees: its waiter runs although the sync one waits */
    CHECK_INT(mj_end_agent_job(d), 4);
    CHECK_INT(mj_domain_agent_job(d), MJ_AGENT_JOB_QUERY);
    CHECK_STR(mj_domain_agent_owner_api(d), "gq");
    CHECK_INT(mj_pending_wait(0), 0);      /* the innermost: the agent's */
    /* and the sync slot: the sync waiter, the agent job still held */
    CHECK_INT(mj_end_job(d), 3);
    CHECK_INT(mj_pending_wait(0), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_QUERY);
    CHECK_INT(mj_end_job(d), 2);
    CHECK_INT(mj_end_agent_job(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);

    /* mj_begin_abandon gives back an agent grant, and only in its slot */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, NULL, 1.0, -1), 0);
    CHECK_INT(mj_begin_agent_job(d, MJ_AGENT_JOB_QUERY, NULL, 1.0, -1), 0);
    mj_begin_abandon(d, MJ_SLOT_AGENT);
    CHECK_INT(mj_domain_agent_job(d), MJ_AGENT_JOB_NONE);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_QUERY);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_end_job(d), 1);
    dispose(d);
}

void test_nowait(void)
{
    mj_domain *d = fresh("vm-nowait", 5.0, 0, false);

    CHECK_INT(mj_begin_job_nowait(d, MJ_JOB_QUERY, "a"), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_QUERY);
    mj_reset_last_error();
    CHECK_INT(mj_begin_job_nowait(d, MJ_JOB_MODIFY, "b"), MJ_BUSY);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OK);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_STR(mj_domain_owner_api(d), "a");
    /* a busy nowait begin left nothing: abandon takes no older job */
    mj_begin_abandon(d, MJ_SLOT_SYNC);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_QUERY);
    CHECK_INT(mj_begin_agent_job_nowait(d, MJ_AGENT_JOB_QUERY, "g"), 0);
    CHECK_INT(mj_begin_agent_job_nowait(d, MJ_AGENT_JOB_MODIFY, "h"), MJ_BUSY);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OK);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_end_agent_job(d), 2);
    CHECK_INT(mj_end_job(d), 1);
    /* errors stay errors */
    CHECK_INT(mj_begin_job_nowait(d, MJ_JOB_ASYNC, NULL), -1);
    agent_check_error(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");
    dispose(d);
}

void test_agent_max_queued(void)
{
    mj_domain *d = fresh("vm-agent-mq", 5.0, 2, false);

    CHECK_INT(mj_begin_agent_job(d, MJ_AGENT_JOB_QUERY, "a1", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q1", 1.0, -1), 0);
    CHECK_INT(mj_begin_agent_job(d, MJ_AGENT_JOB_QUERY, "a2", 1.0, -1), -1);
    agent_check_error(MJ_ERR_OPERATION_FAILED, "cannot acquire state change lock "
                      "(held by agent=a1) due to max_queued limit");
    CHECK_INT(mj_begin_job_nowait(d, MJ_JOB_QUERY, "q2"), -1);
    agent_check_error(MJ_ERR_OPERATION_FAILED, "cannot acquire state change lock "
                      "(held by monitor=q1) due to max_queued limit");
    /* DESTROY and async begins are exempt */
    CHECK_INT(mj_end_job(d), 2);
    CHECK_INT(mj_begin_job(d, MJ_JOB_DESTROY, NULL, 1.0, -1), 0);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    CHECK_INT(mj_end_job(d), 2);
    CHECK_INT(mj_end_agent_job(d), 1);
    dispose(d);
}

void test_mask_widening_hands_off(void)
{
    mj_domain *d = fresh("vm-widen", 5.0, 0, false);

    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_SNAPSHOT, "snap", 1.0, -1,
                                     true, MJ_DESTROY_ONLY_JOB_MASK), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_SUSPEND, "suspend", 5.0, 0), MJ_WAITING);
    CHECK_INT(mj_set_async_job_mask(d, MJ_JOB_MASK(MJ_JOB_QUERY)), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);        /* not yet */
    CHECK_INT(mj_set_async_job_mask(d, UINT64_C(0x37)), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_SUSPEND);     /* handed over */
    double t0 = now_s();
    CHECK_INT(mj_pending_wait(0), 0);
    CHECK_RANGE(now_s() - t0, 0.0, 1.0);
    CHECK_INT(mj_end_job(d), 2);
    CHECK_INT(mj_end_async_job(d), 1);
    dispose(d);
}

void test_uuid(void)
{
    mj_domain *d = fresh("vm-uuid", 5.0, 0, false);

    CHECK_STR(mj_domain_uuid(d), NULL);
    CHECK_INT(mj_domain_set_uuid(d, "0AC1D5D2-36C4-4E39-8F5A-6BB2A0B1C3D4"), 0);
    CHECK_STR(mj_domain_uuid(d), AGENT_UUID);
    static const char *const bad[] = {
        "", "0ac1d5d236c44e398f5a6bb2a0b1c3d4", AGENT_UUID "0",
        "0ac1d5d2-36c4-4e39-8f5a-6bb2a0b1c3d", "0ac1d5d2-36c4-4e39-8f5a+6bb2a0b1c3d4",
        "gac1d5d2-36c4-4e39-8f5a-6bb2a0b1c3d4", " 0ac1d5d2-36c4-4e39-8f5a-6bb2a0b1c3d",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(mj_domain_set_uuid(d, bad[i]), -1);
        CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
        mj_reset_last_error();
    }
    CHECK_STR(mj_domain_uuid(d), AGENT_UUID);

    /* a waiter failed by the removal names the uuid */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 5.0, 0), MJ_WAITING);
    CHECK_INT(mj_domain_remove(d), 2);
    CHECK_INT(mj_pending_wait(0), -1);
    agent_check_error(MJ_ERR_NO_DOMAIN,
                      "no domain with matching uuid '" AGENT_UUID "' (vm-uuid)");
    CHECK_INT(mj_end_job(d), 0);
    dispose(d);
}

/* mj_job_handoff_locked: a change made outside job.c (here the mask, as a
 * restore or discard would change the async slot) lets a waiter in once
 * the hand-off is re-run */
void test_handoff_for_others(void)
{
    mj_domain *d = fresh("vm-handoff", 5.0, 0, false);

    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_START, "start", 1.0, -1,
                                     true, MJ_DESTROY_ONLY_JOB_MASK), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "q", 5.0, 0), MJ_WAITING);
    pthread_mutex_lock(&d->lock);
    d->mask = MJ_DEFAULT_JOB_MASK;          /* changed behind job.c's back */
    CHECK_INT(d->active, MJ_JOB_NONE);      /* nobody let in yet */
    mj_job_handoff_locked(d);
    CHECK_INT(d->active, MJ_JOB_QUERY);
    pthread_mutex_unlock(&d->lock);
    CHECK_INT(mj_pending_wait(0), 0);
    CHECK_INT(mj_end_job(d), 2);
    CHECK_INT(mj_end_async_job(d), 1);
    dispose(d);
}
