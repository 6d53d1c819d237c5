/*
 * internal.h: the domain object and helpers shared by the core's files.
 * Not installed; users see only migjob.h.
 */
#ifndef MIGJOB_INTERNAL_H
#define MIGJOB_INTERNAL_H

#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "migjob.h"

#define MJ_DEFAULT_TIMEOUT 30.0   /* libvirt's QEMU_JOB_WAIT_TIME */

typedef enum {
    SLOT_SYNC,     /* a sync job; waits for the mask and the sync slot */
    SLOT_NESTED,   /* the async job's own monitor call; sync slot only */
    SLOT_ASYNC,    /* the async slot; needs no async job and a free sync slot */
    SLOT_AGENT,    /* the agent slot; needs nothing else (no mask, no sync) */
} slot_kind;

typedef enum { WAITER_QUEUED, WAITER_GRANTED, WAITER_FAILED } waiter_state;

/* What a begin asks for; a waiter carries it until it is granted. */
typedef struct {
    slot_kind kind;
    int job;              /* mj_job for SYNC, mj_agent_job for AGENT,
                           * mj_async_job otherwise */
    char *api;            /* owned copy or NULL; moves into the domain */
    uint64_t thread;      /* the requesting thread */
    bool set_mask;        /* async: mask to install on grant */
    uint64_t mask;
    int info_type;        /* async: job info type on grant */
    bool then_abort;      /* an AbortJob's ABORT job: apply it on grant */
    /* libvirt 11 (asyncjob.c, jobdata.c) */
    bool migration_start; /* async: refused while a migration runs */
    unsigned int api_flags;  /* async: apiFlags on grant */
    int operation;        /* async: job data operation; -1 the kind's */
} job_request;

struct mj_waiter {
    struct mj_waiter *prev, *next;     /* the domain's FIFO queue */
    struct mj_waiter *pending_below;   /* the thread's pending stack */
    mj_notifier *notifier;             /* set once an event loop owns it */
    struct mj_waiter *ready_prev, *ready_next;  /* the notifier's list */
    bool ready;                        /* on that list (notifier's lock) */
    mj_domain *dom;
    job_request req;
    int64_t deadline;                  /* ns, CLOCK_MONOTONIC */
    waiter_state state;
    uint64_t serial;                   /* the grant's, once GRANTED */
    int fail_code;                     /* why it failed, when FAILED */
    char *fail_blocker;                /* a TIMEOUT's holder API, or NULL */
    pthread_cond_t cond;
};

/* virDomainJobData's part this library owns (jobdata.c) */
typedef struct {
    int state;              /* mj_job_state */
    int operation;          /* mj_job_operation */
    int64_t started_ms;     /* CLOCK_REALTIME, for display; 0 unknown */
    int64_t stopped_ms;
    int64_t origin;         /* CLOCK_MONOTONIC ns elapsed counts from */
    int64_t ended;          /* CLOCK_MONOTONIC ns at the end (completed) */
    bool has_delta;
    double delta;           /* s: the destination's received - sent */
    char *error;            /* owned, or NULL */
} mj_job_record;

struct mj_domain {
    pthread_mutex_t lock;
    atomic_int refs;        /* libvirt's count; 0 = dead */
    atomic_int keep;        /* pins + 1 while refs > 0; memory freed at 0 */
    char *name;
    char *uuid;             /* lower case, or NULL; set before sharing */
    int64_t default_timeout;   /* ns */
    unsigned int max_queued;
    bool strict_phases;

    /* everything below is guarded by lock */
    bool removed;
    bool cancelled;         /* by mj_domain_cancel_waiters */
    char *cancel_reason;    /* its reason (NULL if it could not be copied) */

    /* every grant gets the next serial (unique across domains: the
     * counter starts at a per-domain epoch), so a grant can be told from a
     * later one in the same slot */
    uint64_t grants;

    int active;             /* mj_job in the sync slot */
    uint64_t active_serial; /* its grant's serial; 0 when empty */
    uint64_t owner;
    char *owner_api;

    int agent_active;       /* mj_agent_job in the agent slot */
    uint64_t agent_serial;
    uint64_t agent_owner;
    char *agent_owner_api;

    int async_job;
    uint64_t async_serial;  /* likewise for the async slot */
    uint64_t async_owner;
    char *async_owner_api;
    int phase;
    uint64_t mask;
    int64_t async_started;  /* ns */
    int info_type;
    bool abort_requested;

    int jobs_queued;
    mj_waiter *head, *tail;

    /* libvirt 11: the async job's flags, post-copy and job data
     * (asyncjob.c, postcopy.c, jobdata.c) */
    unsigned int api_flags;
    bool async_paused;      /* post-copy failed */
    mj_job_record current;  /* valid while async_job != NONE */
    /* the last ended async job's record, allocated when one ends and freed
     * once read: most domains never carry one */
    mj_job_record *completed;
};

/* error.c: push an error (code, printf-style text) on the calling thread's
 * stack; -1, so that a failing path can return it */
int mj_error_set(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* NO_MEMORY "out of memory"; -1 */
int mj_error_no_memory(void);
/* 0 when 0 <= value < last, else INVALID_ARG "invalid <what> <value>"
 * (what: "job", "async job", ...) and -1 */
int mj_error_check_range(int value, int last, const char *what);
/* INTERNAL_ERROR "Attempt to start invalid job" (a begin of a kind that is
 * no job to start: Job NONE, ASYNC, ASYNC_NESTED; AsyncJob NONE); -1 */
int mj_error_invalid_job(void);
/* 0 when wait_for is a number, else INVALID_ARG "wait_for must be a
 * number" and -1 */
int mj_error_check_wait_for(double wait_for);

/* time.c-ish helpers, in domain.c */
int64_t mj_now(void);
int64_t mj_deadline_after(int64_t now, int64_t span_ns);
int mj_seconds_to_ns(double seconds, int64_t fallback, int64_t *out);

/* domain.c: lifetime */
/* +1 ref: the new count, or -1 with NO_DOMAIN (dead) or OPERATION_FAILED
 * (already MJ_REFS_MAX) set */
int mj_domain_take_ref(mj_domain *d);
int mj_domain_unref_internal(mj_domain *d);
/* the atomic half of an unref, for use under the lock so the count is
 * exact when the lock is released; at 0 the caller must call
 * mj_domain_die once unlocked */
int mj_domain_drop_ref(mj_domain *d);
void mj_domain_die(mj_domain *d);
int mj_error_no_domain(const mj_domain *d);
char *mj_strdup_name(const char *text, int *err);

/* notify.c: tell a waiter's owner that it was granted or failed; the
 * caller holds the domain lock */
void mj_waiter_announce(mj_waiter *w);
/* take w off its notifier's list and drop its notifier reference */
void mj_waiter_detach_notifier(mj_waiter *w);
void mj_notifier_ref(mj_notifier *n);

/* the slot a request fills (nested jobs take the sync slot) */
static inline int
mj_slot_of(slot_kind kind)
{
    switch (kind) {
    case SLOT_ASYNC: return MJ_SLOT_ASYNC;
    case SLOT_AGENT: return MJ_SLOT_AGENT;
    case SLOT_SYNC:
    case SLOT_NESTED: break;
    }
    return MJ_SLOT_SYNC;
}

/* job.c: every begin goes through here (migration.c too) */
int mj_begin(mj_domain *d, slot_kind kind, int job, const char *api,
             double timeout, double wait_for,
             bool set_mask, uint64_t mask, int info_type);
/* job.c, for begin.c: mj_begin that returns MJ_BUSY (no error, nothing
 * changed) where it would have queued */
int mj_begin_nowait(mj_domain *d, slot_kind kind, int job, const char *api);
/* job.c, for end.c: empty the sync or agent slot and hand it on; the caller
 * holds the lock; returns the owner API string to free once unlocked */
char *mj_release_sync_locked(mj_domain *d);
char *mj_release_agent_locked(mj_domain *d);
/* ends the async job; the caller holds the lock; returns the owner API
 * string to free once unlocked */
char *mj_release_async_locked(mj_domain *d);
/* the serial of the grant holding `slot` (an mj_slot), 0 when empty */
uint64_t mj_slot_serial(const mj_domain *d, int slot);
/* empty `slot` and hand it on; the caller holds the lock; returns the
 * owner API to free once unlocked */
char *mj_release_slot_locked(mj_domain *d, int slot);
/* Re-run the hand-off: give the free slots to the queued waiters that may
 * start now (oldest first; expired ones fail).  For any change outside
 * job.c that can let a waiter in -- an async job discarded or restored, a
 * slot emptied -- once the state is changed; the caller holds the lock. */
void mj_job_handoff_locked(mj_domain *d);
/* a queued waiter leaves the queue (and jobs_queued); caller holds the lock */
void mj_job_withdraw_locked(mj_domain *d, mj_waiter *w);
/* push the OPERATION_TIMEOUT of request r: "cannot acquire state change
 * lock (held by ...)" naming `blocker`, or libvirt's choice when NULL; -1 */
int mj_job_timeout_error(const mj_domain *d, const job_request *r,
                         const char *blocker);
/* push the error a FAILED waiter failed with; -1 */
int mj_job_failure(const mj_domain *d, const mj_waiter *w);

/* notes.c: what this thread's begins left (see mj_begin_abandon) */
typedef enum {
    MJ_NOTE_CLOSED, MJ_NOTE_GRANTED, MJ_NOTE_WAITING, MJ_NOTE_FAILED
} mj_note_kind;
void mj_note_add(const mj_domain *d, mj_note_kind kind, int slot,
                 uint64_t serial, mj_waiter *w);
/* close the newest open note of that kind, serial and waiter, if any */
void mj_note_close(const mj_domain *d, int slot, mj_note_kind kind,
                   uint64_t serial, const mj_waiter *w);
/* a begin that fails notes that it left nothing: returns -1 */
int mj_begin_failed(const mj_domain *d, int slot);

/* waiter.c: a begin's waiter, its sliced sleep, the pending stack */
/* calloc'd with its condition variable (CLOCK_MONOTONIC); NULL, no error
 * set, when out of memory */
mj_waiter *mj_waiter_new(void);
void mj_waiter_free(mj_waiter *w);
/* Sleep until w is granted, fails, times out, or `wait_for` passes.
 * Called with d locked; returns with it unlocked.  Frees w (and gives back
 * its reference and pin) unless the result is MJ_WAITING; on 0 *serial is
 * the grant's. */
int mj_waiter_sleep_locked(mj_domain *d, mj_waiter *w, double wait_for,
                           uint64_t *serial);
/* put w on this thread's pending stack and note it */
void mj_pending_push(mj_waiter *w);
/* the innermost pending waiter, or NULL */
mj_waiter *mj_pending_top(void);
/* if w is on this thread's pending stack: take it off and give it up
 * (leave the queue, or end a job handed to it meanwhile) */
void mj_pending_give_up(mj_waiter *w);

/* testing.c: a begin returns "granted": 0, after the test hook's signal */
int mj_granted(void);

/* ---- libvirt 11: the async job's life, post-copy, job data ------------- */

/* job.c: mj_begin with a whole request (libvirt 11's fields included);
 * `api` is the caller's name (copied), req->api and req->thread are
 * ignored */
int mj_begin_req(mj_domain *d, const job_request *req, const char *api,
                 double timeout, double wait_for);

/* asyncjob.c: OPERATION_INVALID "another migration job is already running
 * for domain '%s'" when a migration async job is active; caller locks */
int mj_migration_allowed_locked(const mj_domain *d);

/* jobdata.c: CLOCK_REALTIME in ms since the epoch, for display only */
int64_t mj_wall_ms(void);
/* jobdata.c; the caller holds the lock */
/* the kind's operation (qemu's choice for each async job) */
int mj_jobdata_operation_of(int async_job);
/* a new current record: started_ms 0 is now */
void mj_jobdata_start_locked(mj_domain *d, int operation, int state,
                             int64_t started_ms, int64_t origin);
/* the async job ends: the current record becomes the completed one;
 * `error` (owned, may be NULL) is the failure */
void mj_jobdata_complete_locked(mj_domain *d, char *error);
/* the async slot is reset: forget the current record and the flags */
void mj_jobdata_reset_locked(mj_domain *d);
/* the abort checkpoint fired: the current record is CANCELED */
void mj_jobdata_cancelled_locked(mj_domain *d);
/* libvirt's virDomainJobStatusToType of the current record (NONE without
 * an async job) */
int mj_jobdata_info_type_locked(const mj_domain *d);

#endif /* MIGJOB_INTERNAL_H */
