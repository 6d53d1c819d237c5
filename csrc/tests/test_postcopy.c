/*
 * test_postcopy.c: libvirt 11's calls on the async job's life -- apiFlags,
 * one migration at a time, release / discard / restore, post-copy failure
 * and qemuMigrationAnyCanResume's checks, job data.
 */
#include "helpers.h"

#include <math.h>
#include <pthread.h>
#include <time.h>

static int64_t postcopy_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void test_migration_job_is_allowed(void)
{
    mj_domain *d = fresh("vm-allowed", 1.0, 0, false);

    CHECK_INT(mj_migration_job_is_allowed(d), 0);
    /* another async kind does not count, and a SAVE start still waits */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    CHECK_INT(mj_migration_job_is_allowed(d), 0);
    CHECK_INT(mj_end_async_job(d), 1);
    for (int kind = MJ_ASYNC_JOB_MIGRATION_OUT; kind <= MJ_ASYNC_JOB_MIGRATION_IN; kind++) {
        CHECK_INT(mj_migration_job_start(d, kind, "first", 1.0, -1, false, 0), 0);
        CHECK_INT(mj_migration_job_is_allowed(d), -1);
        CHECK_ERR(MJ_ERR_OPERATION_INVALID, "another migration job is already "
                  "running for domain 'vm-allowed'");
        /* a second migration fails at once, whatever its timeout */
        double t0 = now_s();
        CHECK_INT(mj_migration_job_start_flags(d, MJ_ASYNC_JOB_MIGRATION_IN, "x",
                                               30.0, -1, false, 0, 1), -1);
        CHECK(now_s() - t0 < SLACK);
        CHECK_ERR(MJ_ERR_OPERATION_INVALID, "another migration job is already "
                  "running for domain 'vm-allowed'");
        CHECK_INT(mj_domain_refs(d), 2);
        CHECK_INT(mj_domain_jobs_queued(d), 1);
        CHECK_HEX(mj_domain_api_flags(d), 0);
        CHECK_INT(mj_migration_job_finish(d), 1);
    }
    /* a plain begin of a migration kind is not qemuMigrationJobStart: it waits */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "m", 1.0, -1,
                                     false, 0), 0);
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "b", 0.02, -1), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_OPERATION_TIMEOUT);
    CHECK_INT(mj_migration_job_finish(d), 1);
    dispose(d);
}

void test_api_flags(void)
{
    mj_domain *d = fresh("vm-flags", 1.0, 0, false);
    mj_job_data data;

    CHECK_HEX(mj_domain_api_flags(d), 0);
    CHECK_INT(mj_begin_async_job_flags(d, MJ_ASYNC_JOB_DUMP, "dump", 1.0, -1,
                                       0xffffffffu, -1), 0);
    CHECK_HEX(mj_domain_api_flags(d), 0xffffffffu);
    CHECK_INT(mj_domain_job_stats(d, 0, &data), 1);
    CHECK_INT(data.operation, MJ_JOB_OPERATION_DUMP);
    CHECK_INT(mj_end_async_job(d), 1);
    CHECK_HEX(mj_domain_api_flags(d), 0);             /* reset with the job */
    CHECK_INT(mj_begin_async_job_flags(d, MJ_ASYNC_JOB_START, NULL, 1.0, -1, 3,
                                       MJ_JOB_OPERATION_RESTORE), 0);
    CHECK_INT(mj_domain_job_stats(d, 0, &data), 1);
    CHECK_INT(data.operation, MJ_JOB_OPERATION_RESTORE);
    CHECK_INT(mj_discard_async_job(d), 1);
    CHECK_HEX(mj_domain_api_flags(d), 0);
    CHECK_INT(mj_begin_async_job_flags(d, MJ_ASYNC_JOB_START, NULL, 1.0, -1, 3,
                                       MJ_JOB_OPERATION_LAST), -1);
    CHECK_ERR(MJ_ERR_INVALID_ARG, "invalid job operation 11");
    CHECK_INT(mj_migration_job_start_flags(d, MJ_ASYNC_JOB_MIGRATION_OUT, NULL,
                                           1.0, -1, false, 0, 0x8101), 0);
    CHECK_HEX(mj_domain_api_flags(d), 0x8101);
    CHECK_INT(mj_domain_job_stats(d, 0, &data), 1);
    CHECK_INT(data.operation, MJ_JOB_OPERATION_MIGRATION_OUT);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);
}

void test_release_and_discard(void)
{
    mj_domain *d = fresh("vm-discard", 1.0, 0, false);

    CHECK_INT(mj_release_async_job(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    CHECK_INT(mj_discard_async_job(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");

    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, "begin3", 1.0,
                                     -1, false, 0), 0);
    CHECK_INT(mj_domain_async_owner_thread(d) == self_id(), 1);
    CHECK_INT(mj_release_async_job(d), 0);
    CHECK_HEX(mj_domain_async_owner_thread(d), 0);
    CHECK_STR(mj_domain_async_owner_api(d), "begin3");
    CHECK_INT(mj_domain_refs(d), 2);                 /* no reference moves */

    /* discard with a nested job of it: both go, references and queue places */
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_MIGRATION_OUT, "mon", 1.0, -1), 0);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    CHECK_INT(mj_discard_async_job(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);          /* libvirt leaves it raised */
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_NONE);
    CHECK(mj_domain_owner_api(d) == NULL);
    /* no completed record: a discarded job did not end */
    mj_job_data data;
    CHECK_INT(mj_domain_job_stats(d, MJ_JOB_STATS_COMPLETED, &data), 0);

    /* discard serves a waiter the end lets in */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    CHECK_INT(mj_set_async_job_mask(d, 0), 0);
    worker w;
    worker_init(&w, d, W_SYNC, MJ_JOB_MODIFY, "modify", 5.0);
    worker_start_queued(&w, 3);
    CHECK_INT(mj_discard_async_job(d), 2);           /* the worker's reference */
    worker_join(&w);
    CHECK_INT(w.rc, 0);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);

    /* a caller that gave back more than it took (a Continue too many): the
     * nested job's reference is the last, and the domain dies with it
     * (found by fuzz_jobs: the domain was never freed) */
    d = fresh("vm-discard-last", 1.0, 0, false);
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, NULL, 1.0, -1), 0);
    CHECK_INT(mj_begin_nested_job(d, MJ_ASYNC_JOB_SAVE, NULL, 1.0, -1), 0);
    CHECK_INT(mj_migration_job_continue(d), 2);
    CHECK_INT(mj_migration_job_continue(d), 1);
    CHECK_INT(mj_discard_async_job(d), 0);
    CHECK(!mj_domain_alive(d));
    mj_domain_unpin(d);
}

void test_restore_async_job(void)
{
    mj_domain *d = fresh("vm-restore", 1.0, 0, false);
    mj_job_data data;
    int64_t started = postcopy_wall_ms() - 5000;

    CHECK_INT(mj_restore_async_job(d, MJ_ASYNC_JOB_MIGRATION_OUT,
                                   MJ_PHASE_POSTCOPY_FAILED, false, 0, 0x8101,
                                   NULL, started, -1, -1), 0);
    CHECK_INT(mj_domain_refs(d), 2);                 /* a begin's reference */
    CHECK_INT(mj_domain_jobs_queued(d), 1);
    CHECK_HEX(mj_domain_async_owner_thread(d), 0);   /* parked */
    CHECK_STR(mj_domain_async_owner_api(d), "init-vm-restore");
    CHECK_HEX(mj_domain_mask(d), MJ_MIGRATION_OUT_RESTORED_JOB_MASK);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_POSTCOPY_FAILED);
    CHECK_HEX(mj_domain_api_flags(d), 0x8101);
    CHECK_INT(mj_domain_job_stats(d, 0, &data), 1);
    CHECK_INT(data.state, MJ_JOB_STATE_PAUSED);
    CHECK_INT(data.operation, MJ_JOB_OPERATION_MIGRATION_OUT);
    CHECK_INT(data.started, started);                /* kept, unlike libvirt */
    CHECK_RANGE(data.elapsed, 4.5, 5.0 + SLACK);
    CHECK_RANGE(mj_domain_job_elapsed(d), 4.5, 5.0 + SLACK);
    /* a second restore is refused and changes nothing */
    CHECK_INT(mj_restore_async_job(d, MJ_ASYNC_JOB_BACKUP, 0, false, 0, 0, NULL,
                                   0, -1, -1), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "cannot restore async job backup: async "
              "job migration out is active on the domain");
    CHECK_INT(mj_domain_refs(d), 2);
    /* a resume may take it over */
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_BEGIN_RESUME, "begin"), MJ_PHASE_SET);
    CHECK_INT(mj_migration_job_continue(d), 2);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);

    /* BACKUP: its mask, ACTIVE, an API given; a start in the future counts
     * from now */
    CHECK_INT(mj_restore_async_job(d, MJ_ASYNC_JOB_BACKUP, 0, false, 0, 0, "api",
                                   postcopy_wall_ms() + 3600000, -1, -1), 0);
    CHECK_HEX(mj_domain_mask(d), MJ_BACKUP_JOB_MASK);
    CHECK_STR(mj_domain_async_owner_api(d), "api");
    CHECK_INT(mj_domain_job_stats(d, 0, &data), 1);
    CHECK_INT(data.state, MJ_JOB_STATE_ACTIVE);
    CHECK_INT(data.operation, MJ_JOB_OPERATION_BACKUP);
    CHECK_RANGE(data.elapsed, 0.0, SLACK);
    CHECK_INT(mj_discard_async_job(d), 1);
    /* an explicit mask gains DESTROY; bad arguments change nothing */
    CHECK_INT(mj_restore_async_job(d, MJ_ASYNC_JOB_MIGRATION_IN, MJ_PHASE_FINISH3,
                                   true, 0, 0, NULL, 0, -1, -1), 0);
    CHECK_HEX(mj_domain_mask(d), 0x02);
    CHECK_INT(mj_discard_async_job(d), 1);
    CHECK_INT(mj_restore_async_job(d, MJ_ASYNC_JOB_NONE, 0, false, 0, 0, NULL, 0,
                                   -1, -1), -1);
    CHECK_ERR(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");
    CHECK_INT(mj_restore_async_job(d, MJ_ASYNC_JOB_SAVE, MJ_PHASE_LAST, false, 0,
                                   0, NULL, 0, -1, -1), -1);
    CHECK_ERR(MJ_ERR_INVALID_ARG, "invalid migration phase 16");
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    /* an interrupted caller gives it back */
    CHECK_INT(mj_restore_async_job(d, MJ_ASYNC_JOB_SAVE, 0, false, 0, 0, NULL, 0,
                                   -1, -1), 0);
    mj_begin_abandon(d, MJ_SLOT_ASYNC);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_NONE);
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);
    dispose(d);
}

/* a thread that parks nothing: takes the async job's ownership */
static void *postcopy_start_phase(void *arg)
{
    mj_domain *d = arg;
    mj_migration_job_start_phase(d, MJ_PHASE_POSTCOPY_FAILED, NULL);
    return NULL;
}

void test_postcopy_failed_and_resume(void)
{
    mj_domain *d = fresh("vm-pc", 1.0, 0, false);
    const int OUT = MJ_ASYNC_JOB_MIGRATION_OUT;

    CHECK_INT(mj_domain_async_paused(d), 0);
    CHECK_INT(mj_mark_postcopy_failed(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");
    CHECK_INT(mj_clear_postcopy_failed(d), 0);
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, NULL, 1.0, -1), 0);
    CHECK_INT(mj_mark_postcopy_failed(d), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "domain 'vm-pc' is not being migrated");
    CHECK_INT(mj_domain_postcopy(d), 0);
    CHECK_INT(mj_end_async_job(d), 1);

    /* checks 1 and 2: the arguments, before anything else */
    CHECK_INT(mj_migration_can_resume(d, OUT, MJ_PHASE_POSTCOPY_FAILED, false, true), -1);
    CHECK_ERR(MJ_ERR_ARGUMENT_UNSUPPORTED, "resuming failed post-copy migration "
              "requires post-copy to be enabled");
    CHECK_INT(mj_migration_can_resume(d, OUT, MJ_PHASE_BEGIN_RESUME, true, false), -1);
    CHECK_ERR(MJ_ERR_ARGUMENT_UNSUPPORTED, "resuming failed post-copy migration "
              "requires change protection");
    /* check 3 */
    CHECK_INT(mj_migration_can_resume(d, OUT, MJ_PHASE_PERFORM_RESUME, true, false), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "domain 'vm-pc' is not being migrated");
    CHECK_INT(mj_migration_can_resume(d, MJ_ASYNC_JOB_MIGRATION_IN,
                                      MJ_PHASE_POSTCOPY_FAILED, true, false), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "domain 'vm-pc' is not processing "
              "incoming migration");

    CHECK_INT(mj_migration_job_start(d, OUT, "perform3", 1.0, -1, false, 0), 0);
    CHECK_INT(mj_migration_job_set_phase(d, MJ_PHASE_PERFORM3, NULL), MJ_PHASE_SET);
    /* check 5: not post-copy */
    CHECK_INT(mj_migration_can_resume(d, OUT, MJ_PHASE_POSTCOPY_FAILED, true, true), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "migration of domain vm-pc is not in "
              "post-copy phase");
    /* check 6: post-copy (said by the daemon) but not failed */
    CHECK_INT(mj_set_job_state(d, MJ_JOB_STATE_POSTCOPY, NULL), 0);
    CHECK_INT(mj_domain_postcopy(d), 1);
    CHECK_INT(mj_migration_can_resume(d, OUT, MJ_PHASE_POSTCOPY_FAILED, true, true), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "post-copy migration of domain vm-pc has "
              "not failed");
    /* failed: parked in POSTCOPY_FAILED, refs unchanged */
    CHECK_INT(mj_mark_postcopy_failed(d), 0);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_POSTCOPY_FAILED);
    CHECK_INT(mj_domain_async_paused(d), 1);
    CHECK_HEX(mj_domain_async_owner_thread(d), 0);
    CHECK_STR(mj_domain_async_owner_api(d), "perform3");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_migration_can_resume(d, OUT, MJ_PHASE_POSTCOPY_FAILED, true, true), 0);
    /* check 4: driven by another thread */
    pthread_t t;
    pthread_create(&t, NULL, postcopy_start_phase, d);
    pthread_join(t, NULL);
    CHECK_INT(mj_migration_can_resume(d, OUT, MJ_PHASE_POSTCOPY_FAILED, true, true), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "migration of domain vm-pc is being "
              "actively monitored by another thread");
    CHECK_INT(mj_migration_job_continue(d), 2);      /* its StartPhase's ref */
    /* the resume: Begin takes it, then check 7 refuses an older step */
    CHECK_INT(mj_migration_job_start_phase(d, MJ_PHASE_BEGIN_RESUME, "b"), MJ_PHASE_SET);
    CHECK_INT(mj_migration_can_resume(d, OUT, MJ_PHASE_BEGIN_RESUME, true, true), 0);
    CHECK_INT(mj_migration_can_resume(d, OUT, MJ_PHASE_POSTCOPY_FAILED, true, true), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "resuming failed post-copy migration of "
              "domain vm-pc already in progress");
    CHECK_INT(mj_clear_postcopy_failed(d), 0);       /* QEMU: postcopy-recover */
    CHECK_INT(mj_domain_async_paused(d), 0);
    CHECK_INT(mj_domain_postcopy(d), 1);             /* still in the resume range */
    CHECK_INT(mj_migration_can_resume(d, OUT, MJ_PHASE_PERFORM_RESUME, true, false), 0);
    CHECK_INT(mj_migration_job_continue(d), 2);
    /* a failed step goes back to POSTCOPY_FAILED from any phase */
    CHECK_INT(mj_mark_postcopy_failed(d), 0);
    CHECK_INT(mj_domain_phase(d), MJ_PHASE_POSTCOPY_FAILED);
    CHECK_INT(mj_migration_job_finish(d), 1);
    CHECK_INT(mj_domain_async_paused(d), 0);         /* reset with the job */
    CHECK_INT(mj_domain_postcopy(d), 0);
    dispose(d);
}

void test_job_data(void)
{
    mj_domain *d = fresh("vm-data", 1.0, 0, false);
    mj_job_data data;
    int64_t before = postcopy_wall_ms();

    CHECK_INT(mj_domain_job_stats(d, 0, &data), 0);
    CHECK_INT(mj_domain_job_stats(d, MJ_JOB_STATS_COMPLETED, &data), 0);
    CHECK_INT(mj_domain_job_stats(d, 4, &data), -1);
    CHECK_ERR(MJ_ERR_INVALID_ARG, "unsupported flags (0x4)");
    CHECK_INT(mj_set_job_state(d, MJ_JOB_STATE_MIGRATING, NULL), -1);
    CHECK_ERR(MJ_ERR_OPERATION_INVALID, "no job is active on the domain");

    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "save", 1.0, -1), 0);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_UNBOUNDED);
    CHECK_INT(mj_domain_job_stats(d, 0, &data), 1);
    CHECK_INT(data.state, MJ_JOB_STATE_ACTIVE);
    CHECK_INT(data.operation, MJ_JOB_OPERATION_SAVE);
    CHECK(data.started >= before && data.started <= postcopy_wall_ms());
    CHECK_INT(data.stopped, 0);
    CHECK(!data.has_delta && !data.has_error);
    /* no completed record while an async job runs */
    CHECK_INT(mj_domain_job_stats(d, MJ_JOB_STATS_COMPLETED, &data), 0);
    CHECK_INT(mj_set_job_state(d, MJ_JOB_STATE_LAST, NULL), -1);
    CHECK_ERR(MJ_ERR_INVALID_ARG, "invalid job state 11");
    CHECK_INT(mj_set_job_state(d, MJ_JOB_STATE_NONE, NULL), 0);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_NONE);
    CHECK_INT(mj_domain_job_stats(d, 0, &data), 0);    /* NONE: no job at all */
    CHECK_INT(mj_set_job_state(d, MJ_JOB_STATE_COMPLETED, NULL), 0);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_COMPLETED);
    CHECK_INT(mj_set_job_data(d, MJ_JOB_STATE_PAUSED, NULL, true, true, NAN), -1);
    CHECK_ERR(MJ_ERR_INVALID_ARG, "delta must be finite");
    CHECK_INT(mj_set_job_data(d, MJ_JOB_STATE_PAUSED, NULL, true, true, -0.5), 0);
    CHECK_INT(mj_domain_job_stats(d, 0, &data), 1);
    CHECK(data.stopped >= before && data.stopped <= postcopy_wall_ms());
    CHECK(data.has_delta && data.delta == -0.5);
    CHECK_INT(mj_set_job_state(d, MJ_JOB_STATE_MIGRATING, "note"), 0);
    CHECK_INT(mj_domain_job_stats(d, 0, &data), 1);
    CHECK_STR(data.error, "note");
    sleep_s(0.02);
    CHECK_INT(mj_end_async_job(d), 1);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_NONE);
    CHECK_INT(mj_domain_job_stats(d, 0, &data), 0);
    /* KEEP alone does nothing; COMPLETED|KEEP reads and keeps it */
    CHECK_INT(mj_domain_job_stats(d, MJ_JOB_STATS_KEEP_COMPLETED, &data), 0);
    CHECK_INT(mj_domain_job_stats(d, MJ_JOB_STATS_COMPLETED |
                                     MJ_JOB_STATS_KEEP_COMPLETED, &data), 1);
    CHECK_INT(data.state, MJ_JOB_STATE_COMPLETED);
    double elapsed = data.elapsed;
    CHECK_RANGE(elapsed, 0.02, SLACK);
    sleep_s(0.02);
    CHECK_INT(mj_domain_job_stats(d, MJ_JOB_STATS_COMPLETED, &data), 1);
    CHECK(data.elapsed == elapsed);                  /* frozen at the end */
    CHECK_INT(mj_domain_job_stats(d, MJ_JOB_STATS_COMPLETED, &data), 0);  /* read */

    /* FAILED with the error given; a FAILED state set meanwhile stays */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_DUMP, NULL, 1.0, -1), 0);
    CHECK_INT(mj_end_async_job_error(d, "disk full"), 1);
    CHECK_INT(mj_domain_job_stats(d, MJ_JOB_STATS_COMPLETED, &data), 1);
    CHECK_INT(data.state, MJ_JOB_STATE_FAILED);
    CHECK_STR(data.error, "disk full");
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_DUMP, NULL, 1.0, -1), 0);
    CHECK_INT(mj_set_job_state(d, MJ_JOB_STATE_FAILED, "qemu said no"), 0);
    CHECK_INT(mj_end_async_job(d), 1);
    CHECK_INT(mj_domain_job_stats(d, MJ_JOB_STATS_COMPLETED, &data), 1);
    CHECK_INT(data.state, MJ_JOB_STATE_FAILED);
    CHECK_STR(data.error, "qemu said no");
    /* CANCELED: a failure after an abort request */
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_OUT, NULL, 1.0, -1,
                                     false, 0), 0);
    CHECK_INT(mj_abort_job(d, "abort", 1.0, -1), 0);
    CHECK_INT(mj_check_abort(d), -1);
    CHECK_INT(mj_domain_job_info_type(d), MJ_JOB_INFO_UNBOUNDED);  /* unchanged */
    CHECK_INT(mj_end_async_job_error(d, "migration out: canceled by client"), 1);
    CHECK_INT(mj_domain_job_stats(d, MJ_JOB_STATS_COMPLETED, &data), 1);
    CHECK_INT(data.state, MJ_JOB_STATE_CANCELED);
    CHECK_INT(data.operation, MJ_JOB_OPERATION_MIGRATION_OUT);
    /* a new async job leaves the last record alone until it ends */
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, NULL, 1.0, -1), 0);
    CHECK_INT(mj_end_async_job(d), 1);
    CHECK_INT(mj_migration_job_start(d, MJ_ASYNC_JOB_MIGRATION_IN, NULL, 1.0, -1,
                                     false, 0), 0);
    CHECK_INT(mj_domain_job_stats(d, 0, &data), -1);
    CHECK_ERR(MJ_ERR_OPERATION_UNSUPPORTED, "migration statistics are available "
              "only on the source host");
    CHECK_INT(mj_domain_job_stats(d, MJ_JOB_STATS_COMPLETED, &data), 0);
    CHECK_INT(mj_discard_async_job(d), 1);           /* no record of its own */
    CHECK_INT(mj_domain_job_stats(d, MJ_JOB_STATS_COMPLETED, &data), 1);
    CHECK_INT(data.operation, MJ_JOB_OPERATION_SAVE);
    /* an error longer than a name is refused and ends nothing */
    char long_text[MJ_NAME_MAX + 2];
    memset(long_text, 'x', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    CHECK_INT(mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, NULL, 1.0, -1), 0);
    CHECK_INT(mj_end_async_job_error(d, long_text), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_INVALID_ARG);
    CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_SAVE);
    CHECK_INT(mj_set_job_state(d, MJ_JOB_STATE_ACTIVE, long_text), -1);
    CHECK_INT(mj_end_async_job(d), 1);
    dispose(d);
    /* a dead domain */
    d = fresh("vm-data-dead", 1.0, 0, false);
    CHECK_INT(mj_domain_unref(d), 0);
    CHECK_INT(mj_domain_job_stats(d, 0, &data), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_NO_DOMAIN);
    CHECK_INT(mj_domain_api_flags(d), -1);
    CHECK_INT(mj_domain_async_paused(d), -1);
    CHECK_INT(mj_domain_postcopy(d), -1);
    CHECK_INT(mj_restore_async_job(d, MJ_ASYNC_JOB_SAVE, 0, false, 0, 0, NULL, 0,
                                   -1, -1), -1);
    CHECK_INT(mj_last_error_code(), MJ_ERR_NO_DOMAIN);
    mj_domain_unpin(d);
}
