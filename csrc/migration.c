/*
 * migration.c: the seed's six qemuMigrationJob* helpers, with its
 * reference rules: Start and StartPhase take a reference, Continue and
 * Finish give one back.
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */

#include <stdlib.h>

/* qemuMigrationJobStart's mask for each kind (DESTROY is added with the
 * grant): libvirt 11's for the two migrations; every other kind keeps the
 * seed's "else" branch, the outgoing migration's.  A switch, so that a new
 * async kind is a -Wswitch warning until it is given its mask. */
static uint64_t
migration_default_mask(mj_async_job async_job)
{
    switch (async_job) {
    case MJ_ASYNC_JOB_MIGRATION_IN:
        return MJ_MIGRATION_IN_JOB_MASK;
    case MJ_ASYNC_JOB_MIGRATION_OUT:
    case MJ_ASYNC_JOB_SAVE:
    case MJ_ASYNC_JOB_DUMP:
    case MJ_ASYNC_JOB_SNAPSHOT:
    case MJ_ASYNC_JOB_START:
    case MJ_ASYNC_JOB_BACKUP:
        return MJ_MIGRATION_OUT_JOB_MASK;
    case MJ_ASYNC_JOB_NONE:
    case MJ_ASYNC_JOB_LAST:
        break;
    }
    return MJ_JOB_MASK(MJ_JOB_NONE);
}

int
mj_migration_job_start(mj_domain *d, int async_job, const char *api,
                       double timeout, double wait_for,
                       bool has_mask, uint64_t mask)
{
    return mj_migration_job_start_flags(d, async_job, api, timeout, wait_for,
                                        has_mask, mask, 0);
}

int
mj_migration_job_start_flags(mj_domain *d, int async_job, const char *api,
                             double timeout, double wait_for, bool has_mask,
                             uint64_t mask, unsigned int api_flags)
{
    job_request req = {
        .kind = SLOT_ASYNC, .job = async_job,
        .set_mask = true, .info_type = MJ_JOB_INFO_UNBOUNDED,
        .api_flags = api_flags, .operation = -1,
        /* qemuMigrationJobIsAllowed, before any wait: a second migration
         * fails at once instead of at its deadline */
        .migration_start = async_job == MJ_ASYNC_JOB_MIGRATION_IN ||
                           async_job == MJ_ASYNC_JOB_MIGRATION_OUT,
    };

    if (mj_error_check_range(async_job, MJ_ASYNC_JOB_LAST, "async job") < 0)
        return mj_begin_failed(d, MJ_SLOT_ASYNC);
    if (async_job == MJ_ASYNC_JOB_NONE) {
        mj_error_invalid_job();
        return mj_begin_failed(d, MJ_SLOT_ASYNC);
    }
    /* the mask is installed with the grant, so nobody sees the default */
    req.mask = has_mask ? mask : migration_default_mask((mj_async_job)async_job);
    return mj_begin_req(d, &req, api, timeout, wait_for);
}

/* the caller drives the async job in `phase` now; *copy (the API name, or
 * NULL) replaces the owner API, and the old one comes back to be freed */
static void
migration_enter_phase_locked(mj_domain *d, int phase, char **copy)
{
    d->phase = phase;
    d->async_owner = (uint64_t)pthread_self();
    if (*copy) {
        char *old = d->async_owner_api;

        d->async_owner_api = *copy;
        *copy = old;
    }
}

/* `copy` is the caller's copy of the API name (or NULL); this takes it */
static int
migration_set_phase(mj_domain *d, int phase, char *copy)
{
    int rc;

    pthread_mutex_lock(&d->lock);
    if (!mj_domain_alive(d)) {
        rc = mj_error_no_domain(d);
    } else if (d->async_job == MJ_ASYNC_JOB_NONE) {
        rc = MJ_PHASE_NO_JOB;
    } else if (phase < MJ_PHASE_POSTCOPY_FAILED && phase < d->phase) {
        /* refused, changing nothing; the seed only logs it, strict_phases
         * makes it an error.  The resume range (POSTCOPY_FAILED and up) is
         * entered from any phase, as qemuMigrationCheckPhase allows */
        mj_error_set(MJ_ERR_INTERNAL_ERROR,
                     "migration protocol going backwards %s => %s",
                     mj_phase_to_string(d->phase), mj_phase_to_string(phase));
        rc = d->strict_phases ? -1 : MJ_PHASE_BACKWARDS;
    } else {
        migration_enter_phase_locked(d, phase, &copy);
        rc = MJ_PHASE_SET;
    }
    pthread_mutex_unlock(&d->lock);
    free(copy);
    return rc;
}

/* everything that can fail before the phase is looked at */
static int
migration_phase_args(int phase, const char *api, char **copy)
{
    int err = 0;

    *copy = NULL;
    if (mj_error_check_range(phase, MJ_PHASE_LAST, "migration phase") < 0)
        return -1;
    if (api)
        *copy = mj_strdup_name(api, &err);
    return err;
}

int
mj_migration_job_set_phase(mj_domain *d, int phase, const char *api)
{
    char *copy;

    if (migration_phase_args(phase, api, &copy) < 0)
        return -1;
    return migration_set_phase(d, phase, copy);
}

int
mj_migration_job_start_phase(mj_domain *d, int phase, const char *api)
{
    char *copy;

    if (migration_phase_args(phase, api, &copy) < 0)
        return -1;
    /* this API's own reference, taken even if the phase is refused */
    if (mj_domain_ref(d) < 0) {
        free(copy);
        return -1;
    }
    return migration_set_phase(d, phase, copy);
}

int
mj_migration_job_claim_parked(mj_domain *d, int async_job, int phase,
                              int new_phase, const char *api)
{
    char *copy;
    int rc;

    if (async_job < 0 || async_job >= MJ_ASYNC_JOB_LAST ||
        phase < 0 || phase >= MJ_PHASE_LAST)
        return mj_error_set(MJ_ERR_INVALID_ARG, "invalid async job %d or "
                            "migration phase %d", async_job, phase);
    if (migration_phase_args(new_phase, api, &copy) < 0)
        return -1;
    pthread_mutex_lock(&d->lock);
    if (!mj_domain_alive(d)) {
        rc = mj_error_no_domain(d);
    } else if (d->async_job != async_job || async_job == MJ_ASYNC_JOB_NONE ||
               d->phase != phase || d->async_owner != 0 || new_phase < phase) {
        rc = 0;
    } else if (mj_domain_take_ref(d) < 0) {  /* StartPhase's reference */
        rc = -1;
    } else {
        migration_enter_phase_locked(d, new_phase, &copy);
        rc = 1;
    }
    pthread_mutex_unlock(&d->lock);
    free(copy);
    return rc;
}

int
mj_migration_job_continue(mj_domain *d)
{
    int left;

    pthread_mutex_lock(&d->lock);
    d->async_owner = 0;                    /* parked: no thread drives it */
    left = mj_domain_drop_ref(d);
    pthread_mutex_unlock(&d->lock);
    if (left == 0)
        mj_domain_die(d);
    return left < 0 ? mj_error_no_domain(d) : left;
}

bool
mj_migration_job_is_active(mj_domain *d, int async_job)
{
    bool active;

    pthread_mutex_lock(&d->lock);
    active = mj_domain_alive(d) && d->async_job == async_job;
    pthread_mutex_unlock(&d->lock);
    return active;
}

/* what qemuMigrationJobIsActive says the domain is not doing, per kind:
 * a switch, so that a new async kind is a -Wswitch warning */
static const char *
migration_not_active_text(mj_async_job async_job)
{
    switch (async_job) {
    case MJ_ASYNC_JOB_MIGRATION_IN:
        return "processing incoming migration";
    case MJ_ASYNC_JOB_NONE:
    case MJ_ASYNC_JOB_MIGRATION_OUT:
    case MJ_ASYNC_JOB_SAVE:
    case MJ_ASYNC_JOB_DUMP:
    case MJ_ASYNC_JOB_SNAPSHOT:
    case MJ_ASYNC_JOB_START:
    case MJ_ASYNC_JOB_BACKUP:
    case MJ_ASYNC_JOB_LAST:
        break;
    }
    return "being migrated";
}

int
mj_check_migration_job(mj_domain *d, int async_job)
{
    if (mj_error_check_range(async_job, MJ_ASYNC_JOB_LAST, "async job") < 0)
        return -1;
    if (!mj_domain_alive(d))
        return mj_error_no_domain(d);
    if (mj_migration_job_is_active(d, async_job))
        return 0;
    return mj_error_set(MJ_ERR_OPERATION_INVALID, "domain '%s' is not %s", d->name,
                        migration_not_active_text((mj_async_job)async_job));
}

int
mj_migration_job_finish(mj_domain *d)
{
    return mj_end_async_job(d);
}
