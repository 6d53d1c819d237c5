/*
 * migjob.h: libvirt's QEMU-driver job and migration-phase locking, as a
 * small C library.
 *
 * One mj_domain is one libvirt virDomainObj with its job object: a sync job
 * slot, an async job slot with its allowed-jobs mask and migration phase,
 * nested jobs, jobs_queued / max_queued, owner threads and owner API names,
 * and libvirt's 2011 reference count (jobs and phases hold references).
 *
 * Conventions
 *  - Functions that can fail return a negative value and set the calling
 *    thread's last error (mj_last_error_code / mj_last_error_message).
 *    Success never touches the last error.
 *  - Every function is safe to call from any thread.
 *  - "refs" is libvirt's count: the domain list's reference plus one per
 *    held job and per started phase.  When it reaches 0 the domain is dead:
 *    every later call reports MJ_ERR_NO_DOMAIN.  The memory itself is kept
 *    while any *pin* remains: mj_domain_new returns a pinned pointer, and
 *    each holder of the pointer (a Python handle, a C thread) owns one pin,
 *    released with mj_domain_unpin.  Pins never show in refs.
 *  - Blocking calls pin the domain (and hold a libvirt reference) for as
 *    long as they wait, so nothing another thread does can free it under
 *    them.
 *  - Timeouts are in seconds on CLOCK_MONOTONIC.  A negative timeout means
 *    the domain's default.  One deadline is computed when a begin starts and
 *    covers every wait of that begin, including waits resumed later with
 *    mj_pending_wait.
 *  - Waiting is first come, first served among the waiters that may run:
 *    a job that ends hands the slot to the oldest waiter it lets through.
 *    A waiter blocked by the async mask never holds up one that is allowed.
 */
#ifndef MIGJOB_H
#define MIGJOB_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* names (domain names, API names) are at most this many bytes */
#define MJ_NAME_MAX 1024

/* ---- enums (values follow libvirt 11; the seed's names keep their meaning) */

typedef enum {
    MJ_JOB_NONE = 0,
    MJ_JOB_QUERY,
    MJ_JOB_DESTROY,
    MJ_JOB_SUSPEND,
    MJ_JOB_MODIFY,
    MJ_JOB_ABORT,
    MJ_JOB_MIGRATION_OP,
    MJ_JOB_MODIFY_MIGRATION_SAFE,  /* a modify that cannot disturb a migration */
    MJ_JOB_ASYNC,          /* never stored as the active job */
    MJ_JOB_ASYNC_NESTED,   /* the async job's own monitor calls */
    MJ_JOB_LAST
} mj_job;

typedef enum {
    MJ_ASYNC_JOB_NONE = 0,
    MJ_ASYNC_JOB_MIGRATION_OUT,
    MJ_ASYNC_JOB_MIGRATION_IN,
    MJ_ASYNC_JOB_SAVE,
    MJ_ASYNC_JOB_DUMP,
    MJ_ASYNC_JOB_SNAPSHOT,
    MJ_ASYNC_JOB_START,
    MJ_ASYNC_JOB_BACKUP,
    MJ_ASYNC_JOB_LAST
} mj_async_job;

typedef enum {
    MJ_PHASE_NONE = 0,
    MJ_PHASE_PERFORM2,
    MJ_PHASE_BEGIN3,
    MJ_PHASE_PERFORM3,
    MJ_PHASE_PERFORM3_DONE,
    MJ_PHASE_CONFIRM3_CANCELLED,
    MJ_PHASE_CONFIRM3,
    MJ_PHASE_PREPARE,
    MJ_PHASE_FINISH2,
    MJ_PHASE_FINISH3,
    MJ_PHASE_POSTCOPY_FAILED,  /* the first phase of the resume range */
    MJ_PHASE_BEGIN_RESUME,
    MJ_PHASE_PERFORM_RESUME,
    MJ_PHASE_CONFIRM_RESUME,
    MJ_PHASE_PREPARE_RESUME,
    MJ_PHASE_FINISH_RESUME,
    MJ_PHASE_LAST
} mj_phase;

/* virDomainAgentJob: the third slot, for guest agent calls; independent of
 * the sync slot (neither waits for the other) and of the async mask */
typedef enum {
    MJ_AGENT_JOB_NONE = 0,
    MJ_AGENT_JOB_QUERY,    /* does not change the guest's state */
    MJ_AGENT_JOB_MODIFY,   /* may change it */
    MJ_AGENT_JOB_LAST
} mj_agent_job;

/* virDomainJobType: the type reported by job info */
typedef enum {
    MJ_JOB_INFO_NONE = 0,
    MJ_JOB_INFO_BOUNDED,
    MJ_JOB_INFO_UNBOUNDED,
    MJ_JOB_INFO_COMPLETED,
    MJ_JOB_INFO_FAILED,
    MJ_JOB_INFO_CANCELLED,
    MJ_JOB_INFO_LAST
} mj_job_info_type;

/* libvirt's virErrorNumber values for the errors this library reports */
typedef enum {
    MJ_ERR_OK = 0,
    MJ_ERR_INTERNAL_ERROR = 1,
    MJ_ERR_NO_MEMORY = 2,
    MJ_ERR_INVALID_ARG = 8,      /* a number out of range, a name too long */
    MJ_ERR_OPERATION_FAILED = 9,
    MJ_ERR_XML_ERROR = 27,
    MJ_ERR_SYSTEM_ERROR = 38,
    MJ_ERR_NO_DOMAIN = 42,
    MJ_ERR_OPERATION_INVALID = 55,
    MJ_ERR_OPERATION_TIMEOUT = 68,
    MJ_ERR_ARGUMENT_UNSUPPORTED = 74,
    MJ_ERR_OPERATION_ABORTED = 78,
    MJ_ERR_OPERATION_UNSUPPORTED = 84
} mj_error_code;

/* JOB_MASK(job) = 1 << (job - 1); JOB_MASK(NONE) = 0 */
#define MJ_JOB_MASK(job) ((job) > 0 ? (UINT64_C(1) << ((job) - 1)) : UINT64_C(0))
/* QUERY | DESTROY | ABORT */
#define MJ_DEFAULT_JOB_MASK UINT64_C(0x13)
/* what qemuMigrationJobStart allows during an outgoing migration, DESTROY
 * included: DEFAULT | SUSPEND | MIGRATION_OP | MODIFY_MIGRATION_SAFE */
#define MJ_MIGRATION_OUT_JOB_MASK UINT64_C(0x77)
/* ... and during an incoming one: DESTROY | MODIFY_MIGRATION_SAFE */
#define MJ_MIGRATION_IN_JOB_MASK UINT64_C(0x42)
/* an outgoing migration restored after a restart (no SUSPEND) */
#define MJ_MIGRATION_OUT_RESTORED_JOB_MASK UINT64_C(0x73)
/* a backup: DEFAULT | SUSPEND | MODIFY */
#define MJ_BACKUP_JOB_MASK UINT64_C(0x1f)
/* START and SNAPSHOT create allow nothing but DESTROY */
#define MJ_DESTROY_ONLY_JOB_MASK UINT64_C(0x02)

/* return value of a begin that is still waiting (see mj_pending_wait) */
#define MJ_WAITING 1
/* return value of a nowait begin that would have had to wait: nothing
 * changed and no error is set */
#define MJ_BUSY 2

/* ---- enum <-> string (libvirt's VIR_ENUM_IMPL tables) ------------------ */

/* NULL when out of range */
const char *mj_job_to_string(int job);
const char *mj_async_job_to_string(int async_job);
const char *mj_phase_to_string(int phase);            /* migration phases */
const char *mj_job_info_type_to_string(int type);
/* the index, or -1 when unknown (or NULL); exact and case sensitive.
 * Phases also accept the seed's "preform2" for PERFORM2. */
int mj_job_from_string(const char *text);
int mj_async_job_from_string(const char *text);
int mj_phase_from_string(const char *text);
int mj_job_info_type_from_string(const char *text);
const char *mj_agent_job_to_string(int agent_job);
int mj_agent_job_from_string(const char *text);
/* qemuDomainAsyncJobPhaseToString / FromString: migration jobs use the
 * phase table, every other async job only knows "none".
 * from_string: NULL -> 0, unknown -> -1. */
const char *mj_async_job_phase_to_string(int async_job, int phase);
int mj_async_job_phase_from_string(int async_job, const char *text);

/* ---- errors ------------------------------------------------------------- */

/* Errors are a short per-thread stack: each failure pushes one, and
 * mj_error_take pops the newest.  A library call made between a failure
 * and the reading of its error (say, by a signal handler) pushes and takes
 * its own, so every error reaches the reader of the call that made it. */

/* the longest message, with its NUL */
#define MJ_ERROR_MAX (3 * MJ_NAME_MAX + 256)
/* the calling thread's newest error, left in place; MJ_ERR_OK / "" when
 * there is none */
int mj_last_error_code(void);
/* the calling thread's newest error's text, libvirt's bare message, left
 * in place (valid until its next failing call); "" when there is none */
const char *mj_last_error_message(void);
/* pop the newest error: copy its text into buf (cut to size, always
 * NUL-terminated when size > 0) and return its code; MJ_ERR_OK and "" when
 * there is none */
int mj_error_take(char *buf, size_t size);
/* libvirt's prefix for a code ("Requested operation is not valid", ...) */
const char *mj_error_prefix(int code);
/* forget every error of the calling thread */
void mj_reset_last_error(void);

/* ---- domain object ------------------------------------------------------ */

typedef struct mj_domain mj_domain;

/* A new domain with refs = 1 (the domain list's reference), no job, and
 * one pin owned by the caller.  default_timeout < 0 means 30 s;
 * max_queued 0 is unlimited; strict_phases makes a backwards phase an
 * error instead of a logged refusal.  NULL on error. */
mj_domain *mj_domain_new(const char *name, double default_timeout,
                         unsigned int max_queued, bool strict_phases);
/* take one more pin on d's memory, for a new holder of the pointer */
void mj_domain_pin(mj_domain *d);
/* drop the caller's pin; the memory goes with the last pin once refs is 0
 * (d must not be used by that caller afterwards) */
void mj_domain_unpin(mj_domain *d);

/* the most references a domain counts; one more is refused */
#define MJ_REFS_MAX INT_MAX
/* virDomainObjRef / Unref: refs after the call, -1 when dead (NO_DOMAIN)
 * or, for a ref, when refs is already MJ_REFS_MAX (OPERATION_FAILED; a
 * begin or a phase that needs a reference fails the same way) */
int mj_domain_ref(mj_domain *d);
/* (unref: the last reference kills the domain; its waiters fail) */
int mj_domain_unref(mj_domain *d);

/* virDomainObjListRemove: marks the domain removed (every waiter and every
 * later begin fails with NO_DOMAIN), then drops the list's reference.
 * Returns refs left, -1 if already removed or dead. */
int mj_domain_remove(mj_domain *d);

/* Daemon shutdown: every waiter and every later begin fails with
 * OPERATION_ABORTED "job wait cancelled: <reason>".  Held jobs are left
 * alone and may still end. */
void mj_domain_cancel_waiters(mj_domain *d, const char *reason);

/* read-only state; each is a consistent read under the domain lock.  On a
 * dead domain each of the job getters below sets the NO_DOMAIN error and
 * returns -1 (int, double), MJ_DEAD_U64 (uint64_t) or NULL (the owner API
 * names, also NULL when there is none): one call gives the value or says
 * the domain is gone. */
#define MJ_DEAD_U64 UINT64_MAX
/* d's name, as given to mj_domain_new; valid as long as the pointer */
const char *mj_domain_name(const mj_domain *d);
/* libvirt's reference count; 0 once dead (never an error) */
int mj_domain_refs(const mj_domain *d);
/* refs > 0 */
bool mj_domain_alive(const mj_domain *d);
/* the mj_job in the sync slot (MJ_JOB_NONE when free) */
int mj_domain_active_job(mj_domain *d);
/* the mj_async_job in the async slot (MJ_ASYNC_JOB_NONE when free) */
int mj_domain_async_job(mj_domain *d);
/* the async job's mj_phase (0 without one) */
int mj_domain_phase(mj_domain *d);
/* the jobs the async job allows (JOB_MASK bits); all ones is also a mask a
 * live domain may have: ask mj_domain_alive when it is MJ_DEAD_U64 */
uint64_t mj_domain_mask(mj_domain *d);
/* holders and waiters, as max_queued counts them */
int mj_domain_jobs_queued(mj_domain *d);
/* the job info's mj_job_info_type */
int mj_domain_job_info_type(mj_domain *d);
/* seconds since the async job began; 0 without one */
double mj_domain_job_elapsed(mj_domain *d);
/* 1 when an abort of the async job was requested, else 0 */
int mj_domain_abort_requested(mj_domain *d);
/* pthread_self() of the sync job's holder; 0 when none */
uint64_t mj_domain_owner_thread(mj_domain *d);
/* pthread_self() of the thread driving the async job; 0 when none (parked) */
uint64_t mj_domain_async_owner_thread(mj_domain *d);
/* the mj_agent_job in the agent slot (MJ_AGENT_JOB_NONE when free) */
int mj_domain_agent_job(mj_domain *d);
/* pthread_self() of the agent job's holder; 0 when none */
uint64_t mj_domain_agent_owner_thread(mj_domain *d);
/* the agent job's owner API, as mj_domain_owner_api */
const char *mj_domain_agent_owner_api(mj_domain *d);

/* Give d a uuid, before anybody else uses d: libvirt's textual form, 32
 * hex digits as 8-4-4-4-12 with dashes (either case; stored lower case).
 * Waiters failed by the domain's removal, and every NO_DOMAIN it reports,
 * then read "no domain with matching uuid '<uuid>' (<name>)".  0, or -1
 * with INVALID_ARG "invalid uuid '...'" (nothing changed). */
int mj_domain_set_uuid(mj_domain *d, const char *uuid);
/* the uuid, lower case, or NULL when none was set */
const char *mj_domain_uuid(const mj_domain *d);

/* every job field at one instant (one lock) */
typedef struct {
    int refs;
    int active_job;
    int async_job;
    int phase;
    uint64_t mask;
    int jobs_queued;
    int job_info_type;
    double job_elapsed;
    bool abort_requested;
    uint64_t owner_thread;
    uint64_t async_owner_thread;
    bool has_owner_api;                      /* else owner_api is "" */
    bool has_async_owner_api;
    char owner_api[MJ_NAME_MAX + 1];
    char async_owner_api[MJ_NAME_MAX + 1];
} mj_job_snapshot;
/* fill *out with every field at one instant; 0, or -1 (NO_DOMAIN) when
 * dead (*out is filled either way) */
int mj_domain_snapshot(mj_domain *d, mj_job_snapshot *out);

/* the sync job's owner API (owner_api) or the async job's (async_owner_api),
 * copied into a thread-local buffer valid until this thread's next call of
 * the same function; NULL when none is recorded, or dead (NO_DOMAIN) */
const char *mj_domain_owner_api(mj_domain *d);
const char *mj_domain_async_owner_api(mj_domain *d);

/* ---- jobs --------------------------------------------------------------- */

/*
 * Begins.  `api` (may be NULL) is recorded as the owner API and copied.
 * `wait_for` bounds how long this call itself may block:
 *   wait_for < 0   block until acquired, failed or the deadline;
 *   wait_for >= 0  block at most that long; if the job is still not granted
 *                  return MJ_WAITING: the place in the queue is kept as
 *                  this thread's pending waiter (see below), to be resumed
 *                  with mj_pending_wait or dropped with mj_pending_cancel.
 * Returns 0 when the job is held, -1 on error, MJ_WAITING as above.
 *
 * Errors: INVALID_ARG for a kind outside its enum or a NaN timeout;
 * INTERNAL_ERROR "Attempt to start invalid job" (kind is not a sync
 * job / AsyncJob NONE); OPERATION_TIMEOUT "cannot acquire state change
 * lock[ (held by monitor=API)]" (also when the slot frees after the
 * deadline: an expired waiter is never handed a slot); OPERATION_FAILED
 * "cannot acquire state change lock[ (held by monitor=API)] due to
 * max_queued limit"; OPERATION_FAILED when refs is at MJ_REFS_MAX; NO_DOMAIN
 * when dead or removed; OPERATION_ABORTED after mj_domain_cancel_waiters.
 */
/* begin a sync job `job` (an mj_job from QUERY to MIGRATION_OP) on d */
int mj_begin_job(mj_domain *d, int job, const char *api,
                 double timeout, double wait_for);
/* The hottest path in one argument (cffi pays for each argument past the
 * first): mj_begin_job(d, MJ_JOB_<KIND>, NULL, -1, MJ_WAIT_SLICE). */
#define MJ_WAIT_SLICE 0.05
int mj_begin_query_job(mj_domain *d);
int mj_begin_destroy_job(mj_domain *d);
int mj_begin_suspend_job(mj_domain *d);
int mj_begin_modify_job(mj_domain *d);
int mj_begin_abort_job(mj_domain *d);
int mj_begin_migration_op_job(mj_domain *d);
/* begin the async job `async_job` (an mj_async_job but NONE); the mask is
 * MJ_DEFAULT_JOB_MASK until set */
int mj_begin_async_job(mj_domain *d, int async_job, const char *api,
                       double timeout, double wait_for);
/* the async job's own monitor calls: skips the mask; the async job must be
 * `async_job` (INTERNAL_ERROR "unexpected async job %d type expected %d") */
int mj_begin_nested_job(mj_domain *d, int async_job, const char *api,
                        double timeout, double wait_for);

/* virDomainObjBeginJobNowait: begin_job, but 0 when granted, MJ_BUSY
 * (nothing changed, no error) when it would have had to wait, -1 on the
 * errors of mj_begin_job (a full queue included) */
int mj_begin_job_nowait(mj_domain *d, int job, const char *api);
/* begin the agent job `agent_job` (QUERY or MODIFY): waits only for the
 * agent slot, never for the sync slot or the async mask; counts in
 * jobs_queued and max_queued; a timeout names "(held by agent=<api>)" */
int mj_begin_agent_job(mj_domain *d, int agent_job, const char *api,
                       double timeout, double wait_for);
/* the same without waiting: 0, MJ_BUSY or -1 (see mj_begin_job_nowait) */
int mj_begin_agent_job_nowait(mj_domain *d, int agent_job, const char *api);
/* the agent begins in one argument, as the sync ones above */
int mj_begin_agent_query_job(mj_domain *d);
int mj_begin_agent_modify_job(mj_domain *d);

/* Ends return refs left, or -1: OPERATION_INVALID when nothing to end */
int mj_end_job(mj_domain *d);          /* any sync job, nested included */
int mj_end_nested_job(mj_domain *d);   /* only ASYNC_NESTED */
int mj_end_async_job(mj_domain *d);
/* "no agent job is active on the domain"; never saves status */
int mj_end_agent_job(mj_domain *d);

/* the async job allows `mask` | DESTROY from now on (waiters it lets
 * through are served); 0, also without an async job (nothing done), or -1
 * when dead */
int mj_set_async_job_mask(mj_domain *d, uint64_t mask);

/* ---- waiting in slices -------------------------------------------------- */

/*
 * A begin that returned MJ_WAITING leaves a *pending waiter* on the calling
 * thread (a per-thread stack: the innermost begin is on top).  It keeps its
 * place in the queue, its reference and its jobs_queued slot until it is
 * resolved by one of these, called from the same thread:
 */
/* Wait again for the innermost pending waiter, at most wait_for seconds
 * (< 0: until its deadline).  0: the job is held; -1: failed (last error
 * set); MJ_WAITING: still queued.  On 0 and -1 the waiter is gone.
 * -1 with INTERNAL_ERROR when this thread has no pending waiter. */
int mj_pending_wait(double wait_for);
/* Give up the innermost pending waiter: leave the queue; nothing is held
 * afterwards.  Does nothing when this thread has none. */
void mj_pending_cancel(void);
/* how many waiters this thread has pending */
int mj_pending_count(void);

/* ---- giving back what an interrupted begin left ------------------------- */

/*
 * A caller that is interrupted right after a begin returns -- CPython runs
 * a signal handler the moment a C call returns, before the result is
 * stored -- cannot tell whether the begin granted a job, queued a waiter
 * or failed.  Every begin (and every mj_pending_wait or mj_waiter_poll that
 * settles one) notes on the calling thread what it left for `d` in its
 * slot; this gives back the newest note that is still open: a job still
 * held under that grant is ended (reference and queue slot included), a
 * pending waiter leaves the queue, a failure needs nothing.  A note closes
 * once given back, once its job is ended from this thread, or once its
 * waiter is resolved, cancelled or detached; the newest 64 are kept.
 * `slot` (an mj_slot) picks the slot: the sync one (nested jobs
 * included), the async job's, or the agent job's.  For begins whose result may be lost this way, call it from
 * the caller's exception path only: never after the begin's result was
 * seen, nor for a begin that never ran.
 */
typedef enum {
    MJ_SLOT_SYNC = 0,     /* sync and nested jobs */
    MJ_SLOT_ASYNC = 1,
    MJ_SLOT_AGENT = 2
} mj_slot;
void mj_begin_abandon(mj_domain *d, int slot);

/* ---- waiting from an event loop ----------------------------------------- */

/*
 * A notifier is an eventfd an event loop watches.  A pending waiter moved
 * onto a notifier is no longer the thread's: the loop owns it, and when the
 * waiter is granted or fails the notifier lists it and its fd becomes
 * readable.  The loop then takes the listed waiters and polls each.  Many
 * waiters from many domains can share one notifier; they keep their place
 * in each domain's FIFO queue like any thread.
 */
typedef struct mj_notifier mj_notifier;
typedef struct mj_waiter mj_waiter;

/* a new notifier with its eventfd, owned by the caller; NULL on error
 * (NO_MEMORY, SYSTEM_ERROR) */
mj_notifier *mj_notifier_new(void);
/* the eventfd to watch: readable while n lists waiters */
int mj_notifier_fd(const mj_notifier *n);
/* how many waiters still use n (while its owner holds its reference) */
int mj_notifier_waiters(const mj_notifier *n);
/* drop the caller's reference; the notifier goes with its last waiter */
void mj_notifier_free(mj_notifier *n);
/* the next waiter that was granted or failed, or NULL when none is left
 * (then the fd is drained until the next one) */
mj_waiter *mj_notifier_take(mj_notifier *n);
/* The calls below keep the caller's waiter pointer in *wp, written before
 * they return: NULL once the waiter is gone, so a caller interrupted just
 * after one of them still knows whether it owns a waiter. */
/* move this thread's innermost pending waiter onto n and store it in *out;
 * 0, or -1 (INTERNAL_ERROR) when this thread has none */
int mj_pending_detach(mj_notifier *n, mj_waiter **out);
/* without blocking: 0 the job is held; -1 failed or timed out (last
 * error set); on both the waiter is freed and *wp set to NULL.
 * MJ_WAITING: still queued.  -1 (INTERNAL_ERROR) when *wp is NULL. */
int mj_waiter_poll(mj_waiter **wp);
/* seconds until the waiter's deadline (0 when passed) */
double mj_waiter_remaining(const mj_waiter *w);
/* give up: leave the queue, or end a job granted meanwhile; frees the
 * waiter and sets *wp to NULL; nothing when *wp is NULL */
void mj_waiter_cancel(mj_waiter **wp);

/* ---- migration helpers (the seed) --------------------------------------- */

/* qemuMigrationJobStart: begin the async job, then atomically set the mask
 * (MIGRATION_IN: DESTROY only; any other kind: MJ_MIGRATION_OUT_JOB_MASK;
 * or `mask` when has_mask) and job info UNBOUNDED.  Same returns as the
 * begins. */
int mj_migration_job_start(mj_domain *d, int async_job, const char *api,
                           double timeout, double wait_for,
                           bool has_mask, uint64_t mask);

/* phase results */
#define MJ_PHASE_SET        1   /* phase stored */
#define MJ_PHASE_NO_JOB     0   /* no async job: nothing done */
#define MJ_PHASE_BACKWARDS  2   /* refused; the log text is the last error
                                   ("migration protocol going backwards
                                   X => Y", code INTERNAL_ERROR) */
/* qemuMigrationJobSetPhase.  With strict_phases a backwards phase returns
 * -1 instead of MJ_PHASE_BACKWARDS.  A phase that is set makes the caller
 * the async owner thread and `api` (may be NULL) the async owner API; a
 * refused one changes nothing.  -1 also for an invalid phase. */
int mj_migration_job_set_phase(mj_domain *d, int phase, const char *api);
/* qemuMigrationJobStartPhase: +1 ref (even when the phase is refused),
 * then set_phase. */
int mj_migration_job_start_phase(mj_domain *d, int phase, const char *api);
/* qemuMigrationJobContinue: -1 ref, releases the async owner thread (the
 * owner API stays); returns refs left. */
int mj_migration_job_continue(mj_domain *d);
/* qemuMigrationJobIsActive: never sets an error */
bool mj_migration_job_is_active(mj_domain *d, int async_job);
/* IsActive's error path: 0, or -1 with OPERATION_INVALID
 * "domain '%s' is not being migrated" / "... is not processing incoming
 * migration" */
int mj_check_migration_job(mj_domain *d, int async_job);
/* For a close callback: atomically, if the async job is `async_job`,
 * parked (no owner thread, as after Continue) in `phase`, do what
 * StartPhase(new_phase, api) does (+1 ref, caller owns it) and return 1;
 * otherwise change nothing and return 0.  -1 on error.  Without it, an API
 * arriving between "is it still parked?" and StartPhase would race. */
int mj_migration_job_claim_parked(mj_domain *d, int async_job, int phase,
                                  int new_phase, const char *api);
/* qemuMigrationJobFinish = end the async job: refs left, or -1
 * (OPERATION_INVALID without an async job, NO_DOMAIN) */
int mj_migration_job_finish(mj_domain *d);

/* ---- abort -------------------------------------------------------------- */

/* virDomainAbortJob in one call: begin an ABORT job (blocking like
 * mj_begin_job), then mj_abort_apply.  If it returns MJ_WAITING, the
 * waiter applies the abort itself when granted, inside mj_pending_wait (or
 * mj_waiter_poll once detached), so the caller never holds the ABORT job. */
int mj_abort_job(mj_domain *d, const char *api, double timeout,
                 double wait_for);
/* The body of AbortJob, for a caller that holds the ABORT job: checks the
 * async job ("no job is active on the domain", "cannot abort incoming
 * migration; use virDomainDestroy instead"), raises the abort flag and ends
 * the ABORT job whatever the outcome.  0 or -1. */
int mj_abort_apply(mj_domain *d);
/* the async job's checkpoint: 0, or -1 with OPERATION_ABORTED
 * "<async job>: canceled by client" when abort was requested (NO_DOMAIN
 * when dead) */
int mj_check_abort(mj_domain *d);

/* ---- libvirt 11: the async job's life, post-copy, job data --------------- */

/* virDomainJobStatus (libvirt's numbers, POSTCOPY_RECOVER included) */
typedef enum {
    MJ_JOB_STATE_NONE = 0,
    MJ_JOB_STATE_ACTIVE,
    MJ_JOB_STATE_MIGRATING,
    MJ_JOB_STATE_HYPERVISOR_COMPLETED,
    MJ_JOB_STATE_PAUSED,
    MJ_JOB_STATE_POSTCOPY,
    MJ_JOB_STATE_POSTCOPY_PAUSED,
    MJ_JOB_STATE_POSTCOPY_RECOVER,
    MJ_JOB_STATE_COMPLETED,
    MJ_JOB_STATE_FAILED,
    MJ_JOB_STATE_CANCELED,
    MJ_JOB_STATE_LAST
} mj_job_state;

/* virDomainJobOperation */
typedef enum {
    MJ_JOB_OPERATION_UNKNOWN = 0,
    MJ_JOB_OPERATION_START,
    MJ_JOB_OPERATION_SAVE,
    MJ_JOB_OPERATION_RESTORE,
    MJ_JOB_OPERATION_MIGRATION_IN,
    MJ_JOB_OPERATION_MIGRATION_OUT,
    MJ_JOB_OPERATION_SNAPSHOT,
    MJ_JOB_OPERATION_SNAPSHOT_REVERT,
    MJ_JOB_OPERATION_DUMP,
    MJ_JOB_OPERATION_BACKUP,
    MJ_JOB_OPERATION_SNAPSHOT_DELETE,
    MJ_JOB_OPERATION_LAST
} mj_job_operation;

/* mj_begin_async_job with libvirt's apiFlags (kept until the async job
 * ends) and the job data's operation (-1: the kind's own, e.g. MIGRATION_OUT
 * for MJ_ASYNC_JOB_MIGRATION_OUT).  Same returns as mj_begin_async_job. */
int mj_begin_async_job_flags(mj_domain *d, int async_job, const char *api,
                             double timeout, double wait_for,
                             unsigned int api_flags, int operation);
/* mj_migration_job_start with apiFlags.  A migration kind (IN, OUT) fails
 * at once, before any wait, while a migration async job is active
 * (mj_migration_job_is_allowed's error). */
int mj_migration_job_start_flags(mj_domain *d, int async_job, const char *api,
                                 double timeout, double wait_for, bool has_mask,
                                 uint64_t mask, unsigned int api_flags);
/* qemuMigrationJobIsAllowed: 0, or -1 with OPERATION_INVALID "another
 * migration job is already running for domain '%s'" while the async job is
 * MIGRATION_IN or MIGRATION_OUT (NO_DOMAIN when dead) */
int mj_migration_job_is_allowed(mj_domain *d);
/* the async job's apiFlags (0 without one); -1 when dead */
int64_t mj_domain_api_flags(mj_domain *d);
/* 1 while post-copy has failed (asyncPaused), else 0; -1 when dead */
int mj_domain_async_paused(mj_domain *d);
/* 1 while the async job is a post-copy migration -- its phase in the
 * resume range, post-copy failed, or a POSTCOPY* job state set by the
 * daemon -- else 0; -1 when dead */
int mj_domain_postcopy(mj_domain *d);

/* Post-copy failed: phase POSTCOPY_FAILED (from any phase), asyncPaused set,
 * the job parked (no owner thread; owner API kept); refs unchanged.  0, or
 * -1: OPERATION_INVALID without a migration async job, NO_DOMAIN. */
int mj_mark_postcopy_failed(mj_domain *d);
/* asyncPaused cleared (a post-copy recovery started); nothing without an
 * async job.  0, or -1 when dead. */
int mj_clear_postcopy_failed(mj_domain *d);
/* qemuMigrationAnyCanResume's checks, in its order: 0, or -1 with
 * ARGUMENT_UNSUPPORTED (no post-copy; a source resume before PERFORM_RESUME
 * without change protection) or OPERATION_INVALID (not active, driven by
 * another thread, not post-copy, post-copy not failed, already resuming). */
int mj_migration_can_resume(mj_domain *d, int async_job, int expected_phase,
                            bool postcopy, bool change_protection);

/* qemuDomainObjReleaseAsyncJob: park the async job (no owner thread, the
 * owner API kept); refs unchanged.  0, or -1: OPERATION_INVALID "no job is
 * active on the domain", NO_DOMAIN. */
int mj_release_async_job(mj_domain *d);
/* qemuDomainObjDiscardAsyncJob: end the async job (and a nested job of it)
 * without a completed record; gives back their references and queue
 * places and serves the waiters this lets in.  Refs left, or -1
 * (OPERATION_INVALID without an async job, NO_DOMAIN). */
int mj_discard_async_job(mj_domain *d);
/* qemuDomainObjRestoreAsyncJob, after a restart: the async job `async_job`
 * in `phase`, parked, holding the reference and queue place a begin takes
 * (no wait: OPERATION_INVALID when an async job is active).  mask: the
 * kind's restored mask unless has_mask (OUT 0x73, IN 0x42, BACKUP 0x1f,
 * else the default), DESTROY always added; api NULL: "init-<name>";
 * started_ms: the job's start in ms since the epoch (0: now); operation and
 * state -1: the kind's operation, PAUSED for migrations else ACTIVE.
 * Serves the waiters the new mask lets in.  0 or -1; an interrupted caller
 * gives it back with mj_begin_abandon(d, true). */
int mj_restore_async_job(mj_domain *d, int async_job, int phase, bool has_mask,
                         uint64_t mask, unsigned int api_flags, const char *api,
                         int64_t started_ms, int operation, int state);

/* job data (virDomainJobData): the daemon's own progress, kept with the
 * async job; -1 with INVALID_ARG for a state out of range,
 * OPERATION_INVALID without an async job.  error (may be NULL) replaces
 * the job's error text. */
int mj_set_job_state(mj_domain *d, int state, const char *error);
/* mj_set_job_state, and in the same step: with `stopped`, the record's
 * stopped time becomes now (the vCPUs stopped); with `has_delta`, its
 * delta becomes `delta` seconds (the destination's received - sent; finite,
 * else INVALID_ARG) */
int mj_set_job_data(mj_domain *d, int state, const char *error, bool stopped,
                    bool has_delta, double delta);
/* EndAsyncJob with an outcome: the completed record becomes FAILED with
 * `error` (CANCELED after an abort request), or, without one, keeps a
 * FAILED/CANCELED state set meanwhile, else COMPLETED.  As mj_end_async_job
 * (which is this with NULL); mj_migration_job_finish is mj_end_async_job. */
int mj_end_async_job_error(mj_domain *d, const char *error);

/* one job data record, copied out */
typedef struct {
    int state;               /* mj_job_state */
    int operation;           /* mj_job_operation */
    int64_t started;         /* ms since the epoch (CLOCK_REALTIME); 0 unset */
    int64_t stopped;         /* ms since the epoch; 0 unset */
    double elapsed;          /* seconds, CLOCK_MONOTONIC */
    bool has_delta;
    double delta;            /* seconds, when has_delta */
    bool has_error;
    char error[MJ_NAME_MAX + 1];
} mj_job_data;
#define MJ_JOB_STATS_COMPLETED 1
#define MJ_JOB_STATS_KEEP_COMPLETED 2
/* virDomainGetJobStats: without COMPLETED, the running async job's record
 * (OPERATION_UNSUPPORTED "migration statistics are available only on the
 * source host" for MIGRATION_IN; nothing in state NONE); with it, the last ended async job's, only
 * while none runs, deleted once read unless KEEP_COMPLETED.  1 when *out
 * was filled, 0 when there is nothing to report, -1 on error. */
int mj_domain_job_stats(mj_domain *d, unsigned int flags, mj_job_data *out);

#ifdef __cplusplus
}
#endif
#endif /* MIGJOB_H */
