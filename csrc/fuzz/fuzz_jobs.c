/*
 * fuzz_jobs.c: libFuzzer target: a job-call sequence interpreter over the
 * C API, with a reference-count model (fuzz_jobs_model.c).
 *
 * Each input builds two domains (max_queued and strict_phases from the
 * first bytes) and runs up to 256 operations, one per byte pair: every
 * begin (with wait_for = 0, so a begin that cannot start leaves a pending
 * waiter on this thread, exactly as the Python layer's first slice does;
 * agent begins and nowait begins included),
 * pending_wait / pending_cancel, the notifier calls (detach, take, poll,
 * cancel), every end, masks, phases, continue/finish, abort, ref/unref,
 * remove, cancel_waiters and every accessor.  Single-threaded, so the
 * model is exact:
 *   - refs equals the model's count (libvirt's rules: +1 per begin that
 *     holds or waits, per start_phase on a live domain, per ref; -1 per
 *     end, continue, unref, remove, failed or cancelled waiter);
 *   - a domain is dead exactly when the model reaches 0;
 *   - holders <= jobs_queued <= holders + this input's waiters;
 *   - no async job: phase 0, default mask, no abort flag; otherwise the
 *     mask has DESTROY; no sync job: no owner;
 *   - a failed call leaves a last error with a code and a message;
 *   - a notifier only hands out waiters this input detached, resolved.
 * At the end everything is released and both domains are unref'd to death
 * and unpinned, so LeakSanitizer sees any memory that outlives them.
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "fuzz_jobs_model.h"

static mj_notifier *notifier;
static char long_ok[MJ_NAME_MAX + 1], long_bad[MJ_NAME_MAX + 2];
static bool trace;                 /* FUZZ_TRACE=1: print every operation */

typedef struct { const uint8_t *p; size_t n; } input;

static uint8_t
next(input *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static double
timeout_of(uint8_t b)
{
    static const double t[] = { 0.0, 1e6, -1.0, NAN, 1e-9, INFINITY, 1e300, 3600.0 };
    return t[b % 8];
}

static const char *
api_of(uint8_t b)
{
    switch (b % 5) {
    case 0: return NULL;
    case 1: return "api";
    case 2: return long_ok;       /* exactly MJ_NAME_MAX bytes: accepted */
    case 3: return long_bad;      /* one more: INVALID_ARG */
    default: return "";
    }
}

static void
run_op(input *in)
{
    uint8_t op = next(in), arg = next(in);
    int i = op >> 7;
    mj_domain *d = doms[i].d;
    int rc, job = (int)(arg % 11) - 1;      /* -1 .. 9: out of range both ways */
    double to = timeout_of(arg >> 3);
    const char *api = api_of(arg >> 5);

    bool after_a_begin = last_begin.valid;

    last_begin.valid = false;
    switch (op % 40) {
    case 0: case 1: case 2:
        rc = mj_begin_job(d, job, api, to, 0.0);
        model_after_begin(i, rc, MJ_SLOT_SYNC);
        model_note_begin(i, rc, MJ_SLOT_SYNC, false);
        break;
    case 3:
        rc = mj_begin_async_job(d, (int)(arg % 7) - 1, api, to, 0.0);
        model_after_begin(i, rc, MJ_SLOT_ASYNC);
        model_note_begin(i, rc, MJ_SLOT_ASYNC, false);
        break;
    case 4: case 5:
        rc = mj_begin_nested_job(d, (int)(arg % 7) - 1, api, to, 0.0);
        model_after_begin(i, rc, MJ_SLOT_SYNC);
        model_note_begin(i, rc, MJ_SLOT_SYNC, false);
        break;
    case 6: {
        uint64_t mask = (uint64_t)next(in) << 56 | next(in);
        rc = mj_migration_job_start(d, (int)(arg % 7) - 1, api, to, 0.0, arg & 1, mask);
        model_after_begin(i, rc, MJ_SLOT_ASYNC);
        model_note_begin(i, rc, MJ_SLOT_ASYNC, false);
        break;
    }
    case 7: case 8:
        if (model_may_end_sync(i))
            model_after_end_sync(i, mj_end_job(d));
        break;
    case 9:
        if (model_may_end_sync(i))
            model_after_end_sync(i, mj_end_nested_job(d));
        break;
    case 10:
        if (model_may_end_async(i))
            model_after_end_async(i, mj_end_async_job(d));
        break;
    case 11: {
        uint64_t mask = arg & 0x80 ? UINT64_MAX : (uint64_t)arg;
        rc = mj_set_async_job_mask(d, mask);
        model_failed(rc);
        break;
    }
    case 12: case 13: {
        int phase = (int)(arg % 12) - 1;
        int before = doms[i].dead ? 0 : mj_domain_phase(d);
        rc = mj_migration_job_set_phase(d, phase, api);
        model_failed(rc);
        if (rc == MJ_PHASE_SET)
            CHECK(mj_domain_phase(d) == phase, "set_phase %d left %d", phase,
                  mj_domain_phase(d));
        else if (!doms[i].dead)
            CHECK(mj_domain_phase(d) == before, "a refused phase moved %d -> %d",
                  before, mj_domain_phase(d));
        break;
    }
    case 14: {
        int phase = (int)(arg % 12) - 1;
        /* the arguments are checked first; then the reference is taken,
         * even when the phase is refused */
        bool counts = phase >= 0 && phase < MJ_PHASE_LAST && api != long_bad &&
                      !doms[i].dead;
        rc = mj_migration_job_start_phase(d, phase, api);
        model_failed(rc);
        if (counts)
            doms[i].model++;
        break;
    }
    case 15:
        model_after_end(i, mj_migration_job_continue(d));
        break;
    case 16:
        if (model_may_end_async(i))
            model_after_end_async(i, mj_migration_job_finish(d));
        break;
    case 17: {
        int kind = (int)(arg % 7) - 1;
        bool active = mj_migration_job_is_active(d, kind);
        rc = mj_check_migration_job(d, kind);
        model_failed(rc);
        if (kind >= 0 && kind < MJ_ASYNC_JOB_LAST)
            CHECK((rc == 0) == active, "IsActive %d but check %d", active, rc);
        break;
    }
    case 18:
        rc = mj_abort_job(d, api, to, 0.0);
        CHECK(rc == 0 || rc == -1 || rc == MJ_WAITING, "abort returned %d", rc);
        model_failed(rc);
        if (rc == MJ_WAITING) {
            model_after_begin(i, rc, MJ_SLOT_SYNC);
            pending[npending - 1].abort = true;
        }
        model_note_begin(i, rc, MJ_SLOT_SYNC, true);
        break;
    case 19: {
        bool holds = !doms[i].dead && mj_domain_active_job(d) == MJ_JOB_ABORT;
        if (holds && !model_may_end_sync(i))
            break;
        rc = mj_abort_apply(d);
        model_failed(rc);
        if (holds) {
            model_give_back(i, 1);
            doms[i].sync_mine = false;
        }
        break;
    }
    case 20:
        model_failed(mj_check_abort(d));
        break;
    case 21: case 22:
        if (!npending) {
            CHECK(mj_pending_wait(0.0) == -1, "pending_wait without a waiter");
            break;
        }
        rc = mj_pending_wait(arg & 1 ? 0.0 : 1e-9);
        CHECK(rc == 0 || rc == -1 || rc == MJ_WAITING, "pending_wait returned %d", rc);
        model_failed(rc);
        if (rc != MJ_WAITING) {
            waiter_t w = pending[--npending];

            model_resolved(w, rc);
            model_note_begin(w.dom, rc, w.slot, w.abort);
        } else {
            model_note_begin(pending[npending - 1].dom, rc, pending[npending - 1].slot,
                       pending[npending - 1].abort);
        }
        break;
    case 33:                    /* a caller interrupted as the begin returned */
        if (!after_a_begin)
            break;
        i = last_begin.dom;
        mj_begin_abandon(doms[i].d, last_begin.slot);
        if (last_begin.rc == MJ_WAITING) {
            CHECK(npending && pending[npending - 1].dom == i, "abandon: no waiter");
            model_give_back(pending[--npending].dom, 1);
        } else if (last_begin.rc == 0 && !last_begin.abort) {
            model_give_back(i, 1);
            model_mine(i, last_begin.slot, false);
        }
        CHECK(mj_pending_count() == npending, "pending count %d, model %d",
              mj_pending_count(), npending);
        break;
    case 23:
        if (npending) {
            mj_pending_cancel();
            model_give_back(pending[--npending].dom, 1);
        } else {
            mj_pending_cancel();        /* does nothing */
        }
        break;
    case 24:
        rc = mj_domain_ref(d);
        model_failed(rc);
        if (rc > 0)
            doms[i].model++;
        break;
    case 25:
        model_after_end(i, mj_domain_unref(d));
        break;
    case 26:
        model_after_end(i, mj_domain_remove(d));
        break;
    case 27:
        mj_domain_cancel_waiters(d, arg & 1 ? "shutdown" : api);
        break;
    case 28: {                              /* to the event loop's notifier */
        mj_waiter *w = NULL;
        rc = mj_pending_detach(notifier, &w);
        if (!npending) {
            CHECK(rc == -1 && w == NULL, "detached a waiter that does not exist");
            break;
        }
        CHECK(rc == 0 && w != NULL, "detach failed with %d pending", npending);
        detached[ndetached] = pending[--npending];
        detached[ndetached++].w = w;
        CHECK(mj_waiter_remaining(w) >= 0.0, "negative remaining");
        break;
    }
    case 29: case 30: {                     /* poll one */
        if (!ndetached)
            break;
        int k = arg % ndetached;
        rc = mj_waiter_poll(&detached[k].w);
        CHECK(rc == 0 || rc == -1 || rc == MJ_WAITING, "poll returned %d", rc);
        CHECK((rc == MJ_WAITING) == (detached[k].w != NULL), "poll left %p", (void *)detached[k].w);
        model_failed(rc);
        if (rc != MJ_WAITING) {
            model_resolved(detached[k], rc);
            model_drop_detached(k);
        }
        break;
    }
    case 31: {                              /* cancel one */
        if (!ndetached)
            break;
        int k = arg % ndetached;
        mj_waiter_cancel(&detached[k].w);
        model_give_back(detached[k].dom, 1);
        model_drop_detached(k);
        break;
    }
    case 32: {                              /* the loop's reader callback */
        mj_waiter *w;
        while ((w = mj_notifier_take(notifier))) {
            int k;
            for (k = 0; k < ndetached && detached[k].w != w; k++)
                ;
            CHECK(k < ndetached, "the notifier handed out an unknown waiter");
            rc = mj_waiter_poll(&detached[k].w);
            CHECK(rc == 0 || rc == -1, "a listed waiter polled %d", rc);
            model_failed(rc);
            model_resolved(detached[k], rc);
            model_drop_detached(k);
        }
        break;
    }
    case 34: case 35:
        rc = mj_begin_agent_job(d, (int)(arg % 5) - 1, api, to, 0.0);
        model_after_begin(i, rc, MJ_SLOT_AGENT);
        model_note_begin(i, rc, MJ_SLOT_AGENT, false);
        break;
    case 36:
        rc = mj_begin_agent_job_nowait(d, (int)(arg % 5) - 1, api);
        CHECK(rc != MJ_WAITING, "a nowait begin waits");
        model_after_begin(i, rc, MJ_SLOT_AGENT);
        model_note_begin(i, rc, MJ_SLOT_AGENT, false);
        break;
    case 37:
        rc = mj_begin_job_nowait(d, job, api);
        CHECK(rc != MJ_WAITING, "a nowait begin waits");
        model_after_begin(i, rc, MJ_SLOT_SYNC);
        model_note_begin(i, rc, MJ_SLOT_SYNC, false);
        break;
    case 38:
        if (model_may_end_agent(i)) {
            rc = mj_end_agent_job(d);
            model_after_end(i, rc);
            if (rc >= 0)
                doms[i].agent_mine = false;
        }
        break;
    case 39: {                  /* libvirt 11: the async job's life, post-copy, job data */
        uint8_t b = next(in);   /* the sub-operation's own argument */
        int kind = (int)(b % 7) - 1, phase = (int)(b >> 3) % 18 - 1;
        mj_job_data data;
        switch (arg % 8) {
        case 0:
            model_failed(mj_release_async_job(d));
            break;
        case 1: {                           /* discard: the async job and a nested one */
            bool nested = !doms[i].dead && mj_domain_active_job(d) == MJ_JOB_ASYNC_NESTED;
            if (!model_may_end_async(i) || (nested && !model_may_end_sync(i)))
                break;
            rc = mj_discard_async_job(d);
            model_failed(rc);
            if (rc >= 0) {
                model_give_back(i, 1);            /* the first may kill the domain */
                if (nested)
                    model_give_back(i, 1);
                model_mine(i, MJ_SLOT_ASYNC, false);
                if (nested)
                    model_mine(i, MJ_SLOT_SYNC, false);
                CHECK(lax || rc == (doms[i].dead ? 0 : doms[i].model),
                      "discard returned refs %d, model %d", rc, doms[i].model);
            }
            break;
        }
        case 2: {                           /* restore: a begin's reference */
            uint64_t mask = (uint64_t)next(in) << 56 | next(in);
            int64_t started = b & 0x40 ? -1 : (int64_t)next(in) << 33;
            rc = mj_restore_async_job(d, kind, phase, b & 1, mask, b, api, started,
                                      arg & 0x10 ? -1 : (int)(b % 13) - 1,
                                      arg & 0x20 ? -1 : (int)(b % 12) - 1);
            model_failed(rc);
            CHECK(rc == 0 || rc == -1, "restore returned %d", rc);
            if (rc == 0) {
                CHECK(lax || !doms[i].dead, "a restore on a dead domain succeeded");
                doms[i].model++;
                model_mine(i, MJ_SLOT_ASYNC, true);
                CHECK(mj_domain_async_owner_thread(d) == 0, "a restored job has an owner");
            }
            model_note_begin(i, rc, MJ_SLOT_ASYNC, false);
            break;
        }
        case 3:
            rc = mj_mark_postcopy_failed(d);
            model_failed(rc);
            if (rc == 0)
                CHECK(mj_domain_phase(d) == MJ_PHASE_POSTCOPY_FAILED &&
                      mj_domain_async_paused(d) == 1 && mj_domain_postcopy(d) == 1,
                      "mark_postcopy_failed");
            break;
        case 4:
            model_failed(b & 1 ? mj_clear_postcopy_failed(d)
                         : mj_migration_can_resume(d, kind, phase, b & 0x40, b & 0x80));
            break;
        case 5:
            model_failed(mj_set_job_state(d, (int)(b % 13) - 1, b & 0x80 ? api : NULL));
            rc = mj_domain_job_stats(d, (b >> 4) % 5, &data);
            model_failed(rc);
            CHECK(rc >= -1 && rc <= 1, "job_stats returned %d", rc);
            if (rc == 1)
                CHECK(data.elapsed >= 0.0 && data.state >= 0 &&
                      data.state < MJ_JOB_STATE_LAST, "job data");
            break;
        case 6:
            if (model_may_end_async(i)) {
                rc = mj_end_async_job_error(d, api);
                model_after_end(i, rc);
                if (rc >= 0)
                    model_mine(i, MJ_SLOT_ASYNC, false);
            }
            break;
        default:
            rc = mj_begin_async_job_flags(d, kind, api, to, 0.0, b,
                                          (int)(b >> 3) % 13 - 1);
            model_after_begin(i, rc, MJ_SLOT_ASYNC);
            model_note_begin(i, rc, MJ_SLOT_ASYNC, false);
            break;
        }
        break;
    }
    default:
        break;                              /* check_domain reads everything */
    }
    if (trace) {
        mj_domain *t = doms[i].d;
        fprintf(stderr, "op %2d dom %d arg %3d (job/kind %d, timeout %g, api %s): "
                "refs %d model %d active %d async %d phase %d queued %d pending %d "
                "detached %d\n", op % 40, i, arg, job, to,
                api ? (strlen(api) > 8 ? "<long>" : api) : "NULL",
                mj_domain_refs(t), doms[i].model,
                doms[i].dead ? -1 : mj_domain_active_job(t),
                doms[i].dead ? -1 : mj_domain_async_job(t),
                doms[i].dead ? -1 : mj_domain_phase(t),
                doms[i].dead ? -1 : mj_domain_jobs_queued(t), npending, ndetached);
    }
    CHECK(mj_pending_count() == npending, "pending %d, model %d",
          mj_pending_count(), npending);
    for (int k = 0; k < NDOM; k++)
        model_check_domain(k);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    memset(long_ok, 'a', MJ_NAME_MAX);
    memset(long_bad, 'b', MJ_NAME_MAX + 1);
    trace = getenv("FUZZ_TRACE") != NULL;
    lax = getenv("FUZZ_LAX") != NULL;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in = { data, size };
    uint8_t cfg = next(&in);

    for (int i = 0; i < NDOM; i++) {
        doms[i].d = mj_domain_new(i ? "vm1" : "vm0", i ? 1e6 : -1.0,
                                  (cfg >> (2 * i)) & 3, (cfg >> (4 + i)) & 1);
        CHECK(doms[i].d, "mj_domain_new: %s", mj_last_error_message());
        doms[i].model = 1;
        doms[i].dead = doms[i].sync_mine = doms[i].async_mine = false;
        doms[i].agent_mine = false;
    }
    CHECK(mj_domain_new("", 1.0, 0, false) == NULL, "a domain without a name");
    CHECK(mj_domain_new(long_bad, 1.0, 0, false) == NULL, "a name too long");
    notifier = mj_notifier_new();
    CHECK(notifier, "mj_notifier_new");
    npending = ndetached = 0;
    last_begin.valid = false;

    for (int n = 0; n < 256 && in.n >= 2; n++)
        run_op(&in);

    /* release everything; then LeakSanitizer sees what outlives it */
    while (ndetached) {
        mj_waiter_cancel(&detached[0].w);
        model_give_back(detached[0].dom, 1);
        model_drop_detached(0);
    }
    while (npending) {
        mj_pending_cancel();
        model_give_back(pending[--npending].dom, 1);
    }
    CHECK(mj_pending_count() == 0, "pending waiters left");
    mj_notifier_free(notifier);
    for (int i = 0; i < NDOM; i++) {
        model_check_domain(i);
        while (mj_end_job(doms[i].d) >= 0)
            ;
        while (mj_end_async_job(doms[i].d) >= 0)
            ;
        while (mj_end_agent_job(doms[i].d) >= 0)
            ;
        while (mj_domain_unref(doms[i].d) >= 0)
            ;
        CHECK(!mj_domain_alive(doms[i].d) && mj_domain_refs(doms[i].d) == 0,
              "domain %d still alive after the teardown", i);
        mj_domain_unpin(doms[i].d);
    }
    mj_reset_last_error();
    return 0;
}
