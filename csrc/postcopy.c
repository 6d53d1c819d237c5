/*
 * postcopy.c: a failed post-copy migration and its resume.
 *
 * Our model of "post-copy" (qemu asks the domain's state reason, which this
 * library does not have): a migration async job is post-copy when its
 * phase is in the resume range (POSTCOPY_FAILED and up), when post-copy has
 * failed (async_paused), or when the daemon has said so through the job
 * data (mj_set_job_state / mj_set_job_data: POSTCOPY, POSTCOPY_PAUSED,
 * POSTCOPY_RECOVER).
 * Post-copy has *failed* while async_paused is set (mj_mark_postcopy_failed
 * until mj_clear_postcopy_failed or the end of the async job).
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */

static bool
postcopy_is_migration(int async_job)
{
    return async_job == MJ_ASYNC_JOB_MIGRATION_IN ||
           async_job == MJ_ASYNC_JOB_MIGRATION_OUT;
}

/* the lock is held */
static bool
postcopy_active_locked(const mj_domain *d)
{
    int state = d->current.state;

    if (!postcopy_is_migration(d->async_job))
        return false;
    return d->phase >= MJ_PHASE_POSTCOPY_FAILED || d->async_paused ||
           state == MJ_JOB_STATE_POSTCOPY ||
           state == MJ_JOB_STATE_POSTCOPY_PAUSED ||
           state == MJ_JOB_STATE_POSTCOPY_RECOVER;
}

int
mj_domain_async_paused(mj_domain *d)
{
    int value;

    pthread_mutex_lock(&d->lock);
    value = mj_domain_alive(d) ? d->async_paused : mj_error_no_domain(d);
    pthread_mutex_unlock(&d->lock);
    return value;
}

int
mj_mark_postcopy_failed(mj_domain *d)
{
    int rc = 0;

    pthread_mutex_lock(&d->lock);
    if (!mj_domain_alive(d))
        rc = mj_error_no_domain(d);
    else if (d->async_job == MJ_ASYNC_JOB_NONE)
        rc = mj_error_set(MJ_ERR_OPERATION_INVALID,
                          "no job is active on the domain");
    else if (!postcopy_is_migration(d->async_job))
        rc = mj_error_set(MJ_ERR_OPERATION_INVALID,
                          "domain '%s' is not being migrated", d->name);
    if (rc == 0) {
        /* the resume range is entered from any phase */
        d->phase = MJ_PHASE_POSTCOPY_FAILED;
        d->async_paused = true;
        d->async_owner = 0;                /* parked, waiting for a resume */
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

int
mj_clear_postcopy_failed(mj_domain *d)
{
    int rc = 0;

    pthread_mutex_lock(&d->lock);
    if (!mj_domain_alive(d))
        rc = mj_error_no_domain(d);
    else
        d->async_paused = false;            /* false already without a job */
    pthread_mutex_unlock(&d->lock);
    return rc;
}

/* the checks of qemuMigrationAnyCanResume that need the state, in its
 * order; the lock is held */
static int
postcopy_can_resume_locked(mj_domain *d, int async_job, int expected)
{
    uint64_t owner = d->async_owner;

    if (!mj_domain_alive(d))
        return mj_error_no_domain(d);
    if (d->async_job != async_job)   /* exactly, NONE included */
        return mj_error_set(MJ_ERR_OPERATION_INVALID, "domain '%s' is not %s",
                            d->name, async_job == MJ_ASYNC_JOB_MIGRATION_IN
                            ? "processing incoming migration" : "being migrated");
    if (owner != 0 && owner != (uint64_t)pthread_self())
        return mj_error_set(MJ_ERR_OPERATION_INVALID, "migration of domain %s "
                            "is being actively monitored by another thread",
                            d->name);
    if (!postcopy_active_locked(d))
        return mj_error_set(MJ_ERR_OPERATION_INVALID, "migration of domain %s "
                            "is not in post-copy phase", d->name);
    if (d->phase < MJ_PHASE_POSTCOPY_FAILED && !d->async_paused)
        return mj_error_set(MJ_ERR_OPERATION_INVALID, "post-copy migration of "
                            "domain %s has not failed", d->name);
    if (d->phase > expected)
        return mj_error_set(MJ_ERR_OPERATION_INVALID, "resuming failed post-copy "
                            "migration of domain %s already in progress",
                            d->name);
    return 0;
}

int
mj_migration_can_resume(mj_domain *d, int async_job, int expected_phase,
                        bool postcopy, bool change_protection)
{
    int rc;

    if (mj_error_check_range(async_job, MJ_ASYNC_JOB_LAST, "async job") < 0 ||
        mj_error_check_range(expected_phase, MJ_PHASE_LAST, "migration phase") < 0)
        return -1;
    if (!postcopy)
        return mj_error_set(MJ_ERR_ARGUMENT_UNSUPPORTED, "resuming failed "
                            "post-copy migration requires post-copy to be enabled");
    if (async_job == MJ_ASYNC_JOB_MIGRATION_OUT &&
        expected_phase < MJ_PHASE_PERFORM_RESUME && !change_protection)
        return mj_error_set(MJ_ERR_ARGUMENT_UNSUPPORTED, "resuming failed "
                            "post-copy migration requires change protection");
    pthread_mutex_lock(&d->lock);
    rc = postcopy_can_resume_locked(d, async_job, expected_phase);
    pthread_mutex_unlock(&d->lock);
    return rc;
}

int
mj_domain_postcopy(mj_domain *d)
{
    int value;

    pthread_mutex_lock(&d->lock);
    value = !mj_domain_alive(d) ? mj_error_no_domain(d)
            : postcopy_active_locked(d);
    pthread_mutex_unlock(&d->lock);
    return value;
}
