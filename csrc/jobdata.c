/*
 * jobdata.c: libvirt's virDomainJobData, the part a lock library owns: the
 * async job's state, operation, start and stop times, elapsed time and
 * error, the record of the last async job that ended, and the query of
 * either (virDomainGetJobStats).
 *
 * Two clocks: CLOCK_REALTIME only for the times shown to people (started,
 * stopped, ms since the epoch), CLOCK_MONOTONIC for every duration, so
 * that a clock step never makes a job's elapsed time jump or go negative.
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t
mj_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
mj_jobdata_operation_of(int async_job)
{
    switch ((mj_async_job)async_job) {
    case MJ_ASYNC_JOB_MIGRATION_OUT:
        return MJ_JOB_OPERATION_MIGRATION_OUT;
    case MJ_ASYNC_JOB_MIGRATION_IN:
        return MJ_JOB_OPERATION_MIGRATION_IN;
    case MJ_ASYNC_JOB_SAVE:
        return MJ_JOB_OPERATION_SAVE;
    case MJ_ASYNC_JOB_DUMP:
        return MJ_JOB_OPERATION_DUMP;
    case MJ_ASYNC_JOB_SNAPSHOT:
        return MJ_JOB_OPERATION_SNAPSHOT;
    case MJ_ASYNC_JOB_START:
        return MJ_JOB_OPERATION_START;
    case MJ_ASYNC_JOB_BACKUP:
        return MJ_JOB_OPERATION_BACKUP;
    case MJ_ASYNC_JOB_NONE:
    case MJ_ASYNC_JOB_LAST:
        break;
    }
    return MJ_JOB_OPERATION_UNKNOWN;
}

static void
jobdata_clear(mj_job_record *r)
{
    free(r->error);
    memset(r, 0, sizeof(*r));
}

void
mj_jobdata_start_locked(mj_domain *d, int operation, int state,
                        int64_t started_ms, int64_t origin)
{
    jobdata_clear(&d->current);
    d->current.state = state;
    d->current.operation = operation;
    d->current.started_ms = started_ms > 0 ? started_ms : mj_wall_ms();
    d->current.origin = origin;
}

void
mj_jobdata_complete_locked(mj_domain *d, char *error)
{
    mj_job_record *r = &d->current;

    if (error) {
        /* a failure after an abort request is the abort's doing */
        r->state = d->abort_requested ? MJ_JOB_STATE_CANCELED
                                      : MJ_JOB_STATE_FAILED;
        free(r->error);
        r->error = error;
    } else if (r->state != MJ_JOB_STATE_FAILED &&
               r->state != MJ_JOB_STATE_CANCELED) {
        r->state = MJ_JOB_STATE_COMPLETED;
    }
    r->ended = mj_now();
    if (!d->completed)
        d->completed = calloc(1, sizeof(*d->completed));
    if (d->completed) {
        jobdata_clear(d->completed);
        *d->completed = *r;                 /* the error moves with it */
    } else {
        free(r->error);                     /* out of memory: no record kept */
    }
    memset(r, 0, sizeof(*r));
}

void
mj_jobdata_reset_locked(mj_domain *d)
{
    jobdata_clear(&d->current);
    d->api_flags = 0;
    d->async_paused = false;
}

void
mj_jobdata_cancelled_locked(mj_domain *d)
{
    d->current.state = MJ_JOB_STATE_CANCELED;
}

int
mj_jobdata_info_type_locked(const mj_domain *d)
{
    if (d->async_job == MJ_ASYNC_JOB_NONE)
        return MJ_JOB_INFO_NONE;
    switch ((mj_job_state)d->current.state) {
    case MJ_JOB_STATE_NONE:
        return MJ_JOB_INFO_NONE;
    case MJ_JOB_STATE_COMPLETED:
        return MJ_JOB_INFO_COMPLETED;
    case MJ_JOB_STATE_FAILED:
        return MJ_JOB_INFO_FAILED;
    case MJ_JOB_STATE_CANCELED:
        return MJ_JOB_INFO_CANCELLED;
    case MJ_JOB_STATE_ACTIVE:
    case MJ_JOB_STATE_MIGRATING:
    case MJ_JOB_STATE_HYPERVISOR_COMPLETED:
    case MJ_JOB_STATE_PAUSED:
    case MJ_JOB_STATE_POSTCOPY:
    case MJ_JOB_STATE_POSTCOPY_PAUSED:
    case MJ_JOB_STATE_POSTCOPY_RECOVER:
    case MJ_JOB_STATE_LAST:
        break;
    }
    return MJ_JOB_INFO_UNBOUNDED;
}

int
mj_set_job_state(mj_domain *d, int state, const char *error)
{
    return mj_set_job_data(d, state, error, false, false, 0.0);
}

int
mj_set_job_data(mj_domain *d, int state, const char *error, bool stopped,
                bool has_delta, double delta)
{
    char *copy = NULL;
    int err = 0;
    int rc = 0;

    if (mj_error_check_range(state, MJ_JOB_STATE_LAST, "job state") < 0)
        return -1;
    if (has_delta && !isfinite(delta))
        return mj_error_set(MJ_ERR_INVALID_ARG, "delta must be finite");
    if (error && !(copy = mj_strdup_name(error, &err)))
        return -1;
    pthread_mutex_lock(&d->lock);
    if (!mj_domain_alive(d)) {
        rc = mj_error_no_domain(d);
    } else if (d->async_job == MJ_ASYNC_JOB_NONE) {
        rc = mj_error_set(MJ_ERR_OPERATION_INVALID,
                          "no job is active on the domain");
    } else {
        char *old = d->current.error;

        d->current.state = state;
        d->current.error = copy;
        copy = old;
        if (stopped)
            d->current.stopped_ms = mj_wall_ms();
        if (has_delta) {
            d->current.has_delta = true;
            d->current.delta = delta;
        }
    }
    pthread_mutex_unlock(&d->lock);
    free(copy);
    return rc;
}

/* copy r out; `now` ends a running record's elapsed time */
static void
jobdata_copy_out(const mj_job_record *r, int64_t now, mj_job_data *out)
{
    int64_t end = r->ended ? r->ended : now;

    out->state = r->state;
    out->operation = r->operation;
    out->started = r->started_ms;
    out->stopped = r->stopped_ms;
    out->elapsed = end > r->origin ? (double)(end - r->origin) / 1e9 : 0.0;
    out->has_delta = r->has_delta;
    out->delta = r->has_delta ? r->delta : 0.0;
    out->has_error = r->error != NULL;
    strcpy(out->error, r->error ? r->error : "");   /* at most MJ_NAME_MAX */
}

int
mj_domain_job_stats(mj_domain *d, unsigned int flags, mj_job_data *out)
{
    int rc = 0;

    if (flags & ~(unsigned int)(MJ_JOB_STATS_COMPLETED | MJ_JOB_STATS_KEEP_COMPLETED))
        return mj_error_set(MJ_ERR_INVALID_ARG, "unsupported flags (0x%x)", flags);
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&d->lock);
    if (!mj_domain_alive(d)) {
        rc = mj_error_no_domain(d);
    } else if (flags & MJ_JOB_STATS_COMPLETED) {
        /* the completed record exists once no async job runs */
        if (d->async_job == MJ_ASYNC_JOB_NONE && d->completed) {
            jobdata_copy_out(d->completed, mj_now(), out);
            if (!(flags & MJ_JOB_STATS_KEEP_COMPLETED)) {
                jobdata_clear(d->completed);
                free(d->completed);
                d->completed = NULL;
            }
            rc = 1;
        }
    } else if (d->async_job == MJ_ASYNC_JOB_MIGRATION_IN) {
        rc = mj_error_set(MJ_ERR_OPERATION_UNSUPPORTED, "migration statistics "
                          "are available only on the source host");
    } else if (d->async_job != MJ_ASYNC_JOB_NONE &&
               d->current.state != MJ_JOB_STATE_NONE) {
        /* libvirt reports a record in state NONE as no job at all */
        jobdata_copy_out(&d->current, mj_now(), out);
        rc = 1;
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}
