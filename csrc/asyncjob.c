/*
 * asyncjob.c: libvirt 11's calls on the async job's life beyond begin and
 * end: apiFlags, one migration at a time (qemuMigrationJobIsAllowed), and
 * the park, discard and restore of qemuDomainObj{Release,Discard,Restore}
 * AsyncJob.  Reference rules are the seed's: an async job holds one
 * reference (and one place in jobs_queued) from its begin or restore until
 * it ends or is discarded.
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
mj_begin_async_job_flags(mj_domain *d, int async_job, const char *api,
                         double timeout, double wait_for,
                         unsigned int api_flags, int operation)
{
    job_request req = {
        .kind = SLOT_ASYNC, .job = async_job, .info_type = MJ_JOB_INFO_NONE,
        .api_flags = api_flags, .operation = operation,
    };

    if (mj_error_check_range(async_job, MJ_ASYNC_JOB_LAST, "async job") < 0 ||
        (operation != -1 &&
         mj_error_check_range(operation, MJ_JOB_OPERATION_LAST,
                              "job operation") < 0))
        return mj_begin_failed(d, MJ_SLOT_ASYNC);
    if (async_job == MJ_ASYNC_JOB_NONE) {
        mj_error_invalid_job();
        return mj_begin_failed(d, MJ_SLOT_ASYNC);
    }
    return mj_begin_req(d, &req, api, timeout, wait_for);
}

int
mj_migration_allowed_locked(const mj_domain *d)
{
    if (d->async_job == MJ_ASYNC_JOB_MIGRATION_IN ||
        d->async_job == MJ_ASYNC_JOB_MIGRATION_OUT)
        return mj_error_set(MJ_ERR_OPERATION_INVALID, "another migration job "
                            "is already running for domain '%s'", d->name);
    return 0;
}

int
mj_migration_job_is_allowed(mj_domain *d)
{
    int rc;

    pthread_mutex_lock(&d->lock);
    rc = mj_domain_alive(d) ? mj_migration_allowed_locked(d)
                            : mj_error_no_domain(d);
    pthread_mutex_unlock(&d->lock);
    return rc;
}

int64_t
mj_domain_api_flags(mj_domain *d)
{
    int64_t value;

    pthread_mutex_lock(&d->lock);
    value = mj_domain_alive(d) ? (int64_t)d->api_flags : mj_error_no_domain(d);
    pthread_mutex_unlock(&d->lock);
    return value;
}

/* the lock is held: -1 (error set) unless alive with an async job */
static int
asyncjob_need_async_locked(const mj_domain *d)
{
    if (!mj_domain_alive(d))
        return mj_error_no_domain(d);
    if (d->async_job == MJ_ASYNC_JOB_NONE)
        return mj_error_set(MJ_ERR_OPERATION_INVALID,
                            "no job is active on the domain");
    return 0;
}

int
mj_release_async_job(mj_domain *d)
{
    int rc;

    pthread_mutex_lock(&d->lock);
    rc = asyncjob_need_async_locked(d);
    if (rc == 0)
        d->async_owner = 0;                /* parked; the owner API stays */
    pthread_mutex_unlock(&d->lock);
    return rc;
}

int
mj_discard_async_job(mj_domain *d)
{
    uint64_t async_serial, nested_serial = 0;
    char *nested_api = NULL;
    char *api;
    int left = 1;

    pthread_mutex_lock(&d->lock);
    if (asyncjob_need_async_locked(d) < 0) {
        pthread_mutex_unlock(&d->lock);
        return -1;
    }
    if (d->active == MJ_JOB_ASYNC_NESTED) {
        /* libvirt clears a nested job of the discarded async job; it held
         * a reference and a queue place like any job */
        nested_serial = d->active_serial;
        nested_api = d->owner_api;
        d->active = MJ_JOB_NONE;
        d->active_serial = 0;
        d->owner = 0;
        d->owner_api = NULL;
        d->jobs_queued--;
    }
    async_serial = d->async_serial;
    /* unlike libvirt's DiscardAsyncJob this gives back the job's place in
     * jobs_queued, and it serves the waiters the end lets in */
    api = mj_release_async_locked(d);
    /* the nested job's reference, then the async job's; a caller that
     * gave back more than it took may see the first one kill the domain */
    if (nested_serial)
        left = mj_domain_drop_ref(d);
    if (left != 0)
        left = mj_domain_drop_ref(d);
    pthread_mutex_unlock(&d->lock);
    free(api);
    free(nested_api);
    mj_note_close(d, MJ_SLOT_ASYNC, MJ_NOTE_GRANTED, async_serial, NULL);
    if (nested_serial)
        mj_note_close(d, MJ_SLOT_SYNC, MJ_NOTE_GRANTED, nested_serial, NULL);
    if (left == 0)
        mj_domain_die(d);
    return left < 0 ? mj_error_no_domain(d) : left;
}

/* the mask a restored job gets unless told (qemu's restart code) */
static uint64_t
asyncjob_restored_mask(mj_async_job async_job)
{
    switch (async_job) {
    case MJ_ASYNC_JOB_MIGRATION_OUT:
        return MJ_MIGRATION_OUT_RESTORED_JOB_MASK;
    case MJ_ASYNC_JOB_MIGRATION_IN:
        return MJ_MIGRATION_IN_JOB_MASK;
    case MJ_ASYNC_JOB_BACKUP:
        return MJ_BACKUP_JOB_MASK;
    case MJ_ASYNC_JOB_SAVE:
    case MJ_ASYNC_JOB_DUMP:
    case MJ_ASYNC_JOB_SNAPSHOT:
    case MJ_ASYNC_JOB_START:
    case MJ_ASYNC_JOB_NONE:
    case MJ_ASYNC_JOB_LAST:
        break;
    }
    return MJ_DEFAULT_JOB_MASK;
}

/* restore's arguments; *copy is the owner API to install */
static int
asyncjob_restore_args(const mj_domain *d, int async_job, int phase,
                      const char *api, int64_t started_ms, int operation,
                      int state, char **copy)
{
    char init[MJ_NAME_MAX + 1];
    int err = 0;

    *copy = NULL;
    if (mj_error_check_range(async_job, MJ_ASYNC_JOB_LAST, "async job") < 0 ||
        mj_error_check_range(phase, MJ_PHASE_LAST, "migration phase") < 0 ||
        (operation != -1 && mj_error_check_range(operation, MJ_JOB_OPERATION_LAST,
                                                 "job operation") < 0) ||
        (state != -1 && mj_error_check_range(state, MJ_JOB_STATE_LAST,
                                             "job state") < 0))
        return -1;
    if (async_job == MJ_ASYNC_JOB_NONE)
        return mj_error_invalid_job();
    if (started_ms < 0)
        return mj_error_set(MJ_ERR_INVALID_ARG, "invalid job start %lld",
                            (long long)started_ms);
    if (!api) {
        /* the reconnect thread's name; cut to a name's length */
        snprintf(init, sizeof(init), "init-%s", d->name);
        api = init;
    }
    *copy = mj_strdup_name(api, &err);
    return err;
}

int
mj_restore_async_job(mj_domain *d, int async_job, int phase, bool has_mask,
                     uint64_t mask, unsigned int api_flags, const char *api,
                     int64_t started_ms, int operation, int state)
{
    int64_t now = mj_now(), origin = now;
    uint64_t serial = 0;
    char *copy;
    int rc = 0;

    if (asyncjob_restore_args(d, async_job, phase, api, started_ms, operation,
                              state, &copy) < 0)
        return mj_begin_failed(d, MJ_SLOT_ASYNC);
    if (!has_mask)
        mask = asyncjob_restored_mask((mj_async_job)async_job);
    if (operation == -1)
        operation = mj_jobdata_operation_of(async_job);
    if (state == -1)
        state = async_job == MJ_ASYNC_JOB_MIGRATION_IN ||
                async_job == MJ_ASYNC_JOB_MIGRATION_OUT
                ? MJ_JOB_STATE_PAUSED : MJ_JOB_STATE_ACTIVE;

    pthread_mutex_lock(&d->lock);
    if (d->removed || !mj_domain_alive(d)) {
        rc = mj_error_no_domain(d);
    } else if (d->async_job != MJ_ASYNC_JOB_NONE) {
        rc = mj_error_set(MJ_ERR_OPERATION_INVALID, "cannot restore async job "
                          "%s: async job %s is active on the domain",
                          mj_async_job_to_string(async_job),
                          mj_async_job_to_string(d->async_job));
    } else if (mj_domain_take_ref(d) < 0) {  /* the reference a begin takes */
        rc = -1;
    } else {
        d->jobs_queued++;
        serial = ++d->grants;
        d->async_serial = serial;
        d->async_job = async_job;
        d->async_owner = 0;                /* parked */
        d->async_owner_api = copy;
        copy = NULL;
        d->phase = phase;
        d->mask = mask | MJ_JOB_MASK(MJ_JOB_DESTROY);
        d->abort_requested = false;
        d->api_flags = api_flags;
        d->async_paused = false;
        if (started_ms > 0) {
            /* libvirt loses a preserved job's start; keep it, and count
             * the elapsed time from it (not before now: a start in the
             * future counts from now) */
            int64_t ms = mj_wall_ms() - started_ms;

            if (ms > 0)
                origin = now - (ms > INT64_MAX / 1000000 ? now : ms * 1000000);
        }
        d->async_started = origin;
        mj_jobdata_start_locked(d, operation, state, started_ms, origin);
        mj_job_handoff_locked(d);          /* the new mask may let some in */
    }
    pthread_mutex_unlock(&d->lock);
    free(copy);
    if (rc < 0)
        return mj_begin_failed(d, MJ_SLOT_ASYNC);
    mj_note_add(d, MJ_NOTE_GRANTED, MJ_SLOT_ASYNC, serial, NULL);
    return mj_granted();
}
