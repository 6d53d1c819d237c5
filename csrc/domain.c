/*
 * domain.c: the domain object: creation, libvirt's reference count, the
 * pins that keep its memory, removal, and the read-only accessors.
 *
 * Two counters, because api.md wants `refs` to be exactly libvirt's count
 * while Python handles must never see freed memory:
 *   refs  libvirt's count; reaching 0 makes the domain dead;
 *   keep  one per pin plus one while refs > 0; the memory goes at 0.
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t
mj_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
mj_deadline_after(int64_t now, int64_t span_ns)
{
    return span_ns > INT64_MAX - now ? INT64_MAX : now + span_ns;
}

/* seconds -> ns; negative means `fallback`; NaN is an error; +inf and
 * anything past INT64_MAX ns saturate */
int
mj_seconds_to_ns(double seconds, int64_t fallback, int64_t *out)
{
    if (isnan(seconds))
        return mj_error_set(MJ_ERR_INVALID_ARG, "timeout must be a number");
    if (seconds < 0)
        *out = fallback;
    else if (seconds >= 9.2e9)
        *out = INT64_MAX;
    else
        *out = (int64_t)(seconds * 1e9);
    return 0;
}

char *
mj_strdup_name(const char *text, int *err)
{
    size_t len = strnlen(text, MJ_NAME_MAX + 1);
    char *copy;

    *err = 0;
    if (len > MJ_NAME_MAX) {
        *err = mj_error_set(MJ_ERR_INVALID_ARG,
                            "name longer than %d bytes", MJ_NAME_MAX);
        return NULL;
    }
    if (!(copy = malloc(len + 1))) {
        *err = mj_error_no_memory();
        return NULL;
    }
    memcpy(copy, text, len + 1);
    return copy;
}

/* each domain's grant serials start at its own epoch << 32 */
static atomic_uint_fast64_t domain_epoch = 1;

mj_domain *
mj_domain_new(const char *name, double default_timeout,
              unsigned int max_queued, bool strict_phases)
{
    mj_domain *d;
    int err;

    if (!name || !*name) {
        mj_error_set(MJ_ERR_INVALID_ARG, "a domain needs a name");
        return NULL;
    }
    if (!(d = calloc(1, sizeof(*d)))) {
        mj_error_no_memory();
        return NULL;
    }
    if (mj_seconds_to_ns(default_timeout,
                         (int64_t)(MJ_DEFAULT_TIMEOUT * 1e9),
                         &d->default_timeout) < 0 ||
        !(d->name = mj_strdup_name(name, &err))) {
        free(d);
        return NULL;
    }
    if ((errno = pthread_mutex_init(&d->lock, NULL)) != 0) {
        mj_error_set(MJ_ERR_SYSTEM_ERROR, "cannot initialize mutex");
        free(d->name);
        free(d);
        return NULL;
    }
    d->grants = atomic_fetch_add_explicit(&domain_epoch, 1,
                                          memory_order_relaxed) << 32;
    atomic_init(&d->refs, 1);
    atomic_init(&d->keep, 2);        /* refs > 0, and the caller's pin */
    d->max_queued = max_queued;
    d->strict_phases = strict_phases;
    d->mask = MJ_DEFAULT_JOB_MASK;
    return d;
}

static void
domain_free(mj_domain *d)
{
    pthread_mutex_destroy(&d->lock);
    free(d->owner_api);
    free(d->async_owner_api);
    free(d->agent_owner_api);
    free(d->cancel_reason);
    free(d->current.error);
    if (d->completed)
        free(d->completed->error);
    free(d->completed);
    free(d->uuid);
    free(d->name);
    free(d);
}

void
mj_domain_pin(mj_domain *d)
{
    atomic_fetch_add_explicit(&d->keep, 1, memory_order_relaxed);
}

void
mj_domain_unpin(mj_domain *d)
{
    if (atomic_fetch_sub_explicit(&d->keep, 1, memory_order_acq_rel) == 1)
        domain_free(d);
}

int
mj_error_no_domain(const mj_domain *d)
{
    if (d->uuid)
        return mj_error_set(MJ_ERR_NO_DOMAIN, "no domain with matching uuid "
                            "'%s' (%s)", d->uuid, d->name);
    return mj_error_set(MJ_ERR_NO_DOMAIN, "no domain with matching name '%s'",
                        d->name);
}

/* libvirt's textual uuid: 8-4-4-4-12 hex digits; true and the lower case
 * copy in out[37] when `text` is one */
static bool
domain_uuid_parse(const char *text, char out[37])
{
    static const char hex[] = "0123456789abcdef";

    for (int i = 0; i < 36; i++) {
        char c = text[i];

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (c >= 'A' && c <= 'F') {
            c = hex[c - 'A' + 10];
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;          /* the NUL of a short text stops here */
        }
        out[i] = c;
    }
    out[36] = '\0';
    return text[36] == '\0';
}

int
mj_domain_set_uuid(mj_domain *d, const char *uuid)
{
    char copy[37];

    if (!uuid || !domain_uuid_parse(uuid, copy))
        return mj_error_set(MJ_ERR_INVALID_ARG, "invalid uuid '%.64s'",
                            uuid ? uuid : "(null)");
    free(d->uuid);
    if (!(d->uuid = strdup(copy)))
        return mj_error_no_memory();
    return 0;
}

const char *mj_domain_uuid(const mj_domain *d) { return d->uuid; }

/* the new count; 0 when the domain is dead (a dead domain stays dead);
 * -1 when refs is already MJ_REFS_MAX */
static int
domain_ref_if_alive(mj_domain *d)
{
    int refs = atomic_load_explicit(&d->refs, memory_order_relaxed);

    while (refs > 0) {
        if (refs == MJ_REFS_MAX)
            return -1;
        if (atomic_compare_exchange_weak_explicit(&d->refs, &refs, refs + 1,
                                                  memory_order_acq_rel,
                                                  memory_order_relaxed))
            return refs + 1;
    }
    return 0;
}

int
mj_domain_take_ref(mj_domain *d)
{
    int refs = domain_ref_if_alive(d);

    if (refs > 0)
        return refs;
    if (refs < 0)
        return mj_error_set(MJ_ERR_OPERATION_FAILED, "domain '%s' already has "
                            "%d references, the most it can count",
                            d->name, MJ_REFS_MAX);
    return mj_error_no_domain(d);
}

/* fail every queued waiter with `code`; caller holds the lock */
static void
domain_fail_waiters(mj_domain *d, int code)
{
    for (mj_waiter *w = d->head; w; w = d->head) {
        d->head = w->next;
        w->prev = w->next = NULL;
        w->state = WAITER_FAILED;
        w->fail_code = code;
        d->jobs_queued--;
        mj_waiter_announce(w);
    }
    d->tail = NULL;
}

/* Waiters hold references, so a dead domain has none queued unless
 * somebody unref'd more than they ref'd; fail those, under the lock, and
 * only then let the memory go. */
void
mj_domain_die(mj_domain *d)
{
    pthread_mutex_lock(&d->lock);
    domain_fail_waiters(d, MJ_ERR_NO_DOMAIN);
    pthread_mutex_unlock(&d->lock);
    mj_domain_unpin(d);              /* the unit that refs > 0 held */
}

int
mj_domain_drop_ref(mj_domain *d)
{
    int refs = atomic_load_explicit(&d->refs, memory_order_relaxed);

    while (refs > 0)
        if (atomic_compare_exchange_weak_explicit(&d->refs, &refs, refs - 1,
                                                  memory_order_acq_rel,
                                                  memory_order_relaxed))
            return refs - 1;
    return -1;
}

/* refs left, or -1 (no error set) when the domain was already dead */
int
mj_domain_unref_internal(mj_domain *d)
{
    int left = mj_domain_drop_ref(d);

    if (left == 0)
        mj_domain_die(d);
    return left;
}

int mj_domain_ref(mj_domain *d) { return mj_domain_take_ref(d); }

int
mj_domain_unref(mj_domain *d)
{
    int left = mj_domain_unref_internal(d);

    return left < 0 ? mj_error_no_domain(d) : left;
}

int
mj_domain_remove(mj_domain *d)
{
    int left;

    pthread_mutex_lock(&d->lock);
    if (d->removed || atomic_load(&d->refs) == 0) {
        pthread_mutex_unlock(&d->lock);
        return mj_error_no_domain(d);
    }
    d->removed = true;
    domain_fail_waiters(d, MJ_ERR_NO_DOMAIN);
    left = mj_domain_drop_ref(d);          /* the list's reference */
    pthread_mutex_unlock(&d->lock);
    if (left == 0)
        mj_domain_die(d);
    return left;
}

void
mj_domain_cancel_waiters(mj_domain *d, const char *reason)
{
    /* cut, not refused: this call reports nothing */
    char *copy = strndup(reason ? reason : "shutdown", MJ_NAME_MAX);

    pthread_mutex_lock(&d->lock);
    d->cancelled = true;
    if (!d->cancel_reason) {
        d->cancel_reason = copy;
        copy = NULL;
    }
    domain_fail_waiters(d, MJ_ERR_OPERATION_ABORTED);
    pthread_mutex_unlock(&d->lock);
    free(copy);
}

/* ---- accessors ---------------------------------------------------------- */

const char *mj_domain_name(const mj_domain *d) { return d->name; }

int
mj_domain_refs(const mj_domain *d)
{
    return atomic_load_explicit(&d->refs, memory_order_acquire);
}

bool mj_domain_alive(const mj_domain *d) { return mj_domain_refs(d) > 0; }

/* one field read under the lock, for each field type; a dead domain gives
 * the sentinel and the NO_DOMAIN error (the getters in migjob.h) */
static int
domain_read_int(mj_domain *d, const int *field)
{
    int value;

    if (!mj_domain_alive(d))
        return mj_error_no_domain(d);
    pthread_mutex_lock(&d->lock);
    value = *field;
    pthread_mutex_unlock(&d->lock);
    return value;
}

static uint64_t
domain_read_u64(mj_domain *d, const uint64_t *field)
{
    uint64_t value;

    if (!mj_domain_alive(d)) {
        mj_error_no_domain(d);
        return MJ_DEAD_U64;
    }
    pthread_mutex_lock(&d->lock);
    value = *field;
    pthread_mutex_unlock(&d->lock);
    return value;
}

int mj_domain_active_job(mj_domain *d) { return domain_read_int(d, &d->active); }
int mj_domain_async_job(mj_domain *d) { return domain_read_int(d, &d->async_job); }
int mj_domain_agent_job(mj_domain *d) { return domain_read_int(d, &d->agent_active); }
int mj_domain_phase(mj_domain *d) { return domain_read_int(d, &d->phase); }
int mj_domain_jobs_queued(mj_domain *d) { return domain_read_int(d, &d->jobs_queued); }

/* libvirt 11: the type follows the job data (virDomainJobStatusToType) */
int
mj_domain_job_info_type(mj_domain *d)
{
    int value;

    if (!mj_domain_alive(d))
        return mj_error_no_domain(d);
    pthread_mutex_lock(&d->lock);
    value = mj_jobdata_info_type_locked(d);
    pthread_mutex_unlock(&d->lock);
    return value;
}
uint64_t mj_domain_mask(mj_domain *d) { return domain_read_u64(d, &d->mask); }
uint64_t mj_domain_owner_thread(mj_domain *d) { return domain_read_u64(d, &d->owner); }

uint64_t
mj_domain_agent_owner_thread(mj_domain *d)
{
    return domain_read_u64(d, &d->agent_owner);
}

uint64_t
mj_domain_async_owner_thread(mj_domain *d)
{
    return domain_read_u64(d, &d->async_owner);
}

int
mj_domain_abort_requested(mj_domain *d)
{
    int value;

    if (!mj_domain_alive(d))
        return mj_error_no_domain(d);
    pthread_mutex_lock(&d->lock);
    value = d->abort_requested;
    pthread_mutex_unlock(&d->lock);
    return value;
}

double
mj_domain_job_elapsed(mj_domain *d)
{
    double value;

    if (!mj_domain_alive(d))
        return mj_error_no_domain(d);
    pthread_mutex_lock(&d->lock);
    value = d->async_job ? (double)(mj_now() - d->async_started) / 1e9 : 0.0;
    pthread_mutex_unlock(&d->lock);
    return value;
}

int
mj_domain_snapshot(mj_domain *d, mj_job_snapshot *out)
{
    int64_t now = mj_now();

    pthread_mutex_lock(&d->lock);
    out->refs = mj_domain_refs(d);
    out->active_job = d->active;
    out->async_job = d->async_job;
    out->phase = d->phase;
    out->mask = d->mask;
    out->jobs_queued = d->jobs_queued;
    out->job_info_type = mj_jobdata_info_type_locked(d);
    out->job_elapsed = d->async_job ? (double)(now - d->async_started) / 1e9 : 0.0;
    out->abort_requested = d->abort_requested;
    out->owner_thread = d->owner;
    out->async_owner_thread = d->async_owner;
    out->has_owner_api = d->owner_api != NULL;
    out->has_async_owner_api = d->async_owner_api != NULL;
    strcpy(out->owner_api, d->owner_api ? d->owner_api : "");
    strcpy(out->async_owner_api, d->async_owner_api ? d->async_owner_api : "");
    pthread_mutex_unlock(&d->lock);
    return out->refs > 0 ? 0 : mj_error_no_domain(d);
}

static _Thread_local char domain_owner_api_copy[MJ_NAME_MAX + 1];
static _Thread_local char domain_async_owner_api_copy[MJ_NAME_MAX + 1];
static _Thread_local char domain_agent_owner_api_copy[MJ_NAME_MAX + 1];

static const char *
domain_copy_api(mj_domain *d, char *const *field, char *buf)
{
    const char *result = NULL;

    if (!mj_domain_alive(d)) {
        mj_error_no_domain(d);
        return NULL;
    }
    pthread_mutex_lock(&d->lock);
    if (*field) {
        strcpy(buf, *field);        /* both are at most MJ_NAME_MAX */
        result = buf;
    }
    pthread_mutex_unlock(&d->lock);
    return result;
}

const char *
mj_domain_owner_api(mj_domain *d)
{
    return domain_copy_api(d, &d->owner_api, domain_owner_api_copy);
}

const char *
mj_domain_async_owner_api(mj_domain *d)
{
    return domain_copy_api(d, &d->async_owner_api, domain_async_owner_api_copy);
}

const char *
mj_domain_agent_owner_api(mj_domain *d)
{
    return domain_copy_api(d, &d->agent_owner_api, domain_agent_owner_api_copy);
}
