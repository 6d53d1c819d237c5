/*
 * fuzz_jobs_model.c: the model of fuzz_jobs.c (see fuzz_jobs_model.h):
 * refs as libvirt's rules count them, the slots this input knows it holds,
 * its pending and detached waiters, and the invariants check_domain reads
 * back from the core.
 */
#include <string.h>

#include "fuzz_jobs_model.h"

/* the model's state (declared, with what each holds, in fuzz_jobs_model.h) */
model_last_begin_t last_begin;
dom_t doms[NDOM];
waiter_t pending[MAXW];
int npending;
waiter_t detached[MAXW];
int ndetached;
bool lax;

void
model_failed(int rc)
{
    if (rc == -1)
        CHECK(mj_last_error_code() != MJ_ERR_OK && *mj_last_error_message(),
              "a failure without a last error (code %d)", mj_last_error_code());
}

void
model_give_back(int i, int n)
{
    if (doms[i].dead || lax)
        return;
    doms[i].model -= n;
    CHECK(doms[i].model >= 0, "model below zero on domain %d", i);
    if (doms[i].model == 0)
        doms[i].dead = true;
}

void
model_mine(int i, int slot, bool held)
{
    if (slot == MJ_SLOT_SYNC)
        doms[i].sync_mine = held;
    else if (slot == MJ_SLOT_ASYNC)
        doms[i].async_mine = held;
    else
        doms[i].agent_mine = held;
}

/* a begin's result: held (+1), waiting (+1, pending), or nothing (failed,
 * or a nowait begin that was busy) */
void
model_after_begin(int i, int rc, int slot)
{
    CHECK(rc == 0 || rc == -1 || rc == MJ_WAITING || rc == MJ_BUSY,
          "begin returned %d", rc);
    model_failed(rc);
    if (rc == -1 || rc == MJ_BUSY)
        return;
    CHECK(lax || !doms[i].dead, "a begin on a dead domain succeeded");
    doms[i].model++;
    if (rc == MJ_WAITING) {
        CHECK(npending < MAXW, "too many waiters");
        pending[npending].dom = i;
        pending[npending].abort = false;
        pending[npending++].slot = slot;
    } else {
        model_mine(i, slot, true);
    }
    CHECK(mj_pending_count() == npending, "pending count %d, model %d",
          mj_pending_count(), npending);
}

void
model_note_begin(int i, int rc, int slot, bool abort)
{
    last_begin.valid = true;
    last_begin.dom = i;
    last_begin.slot = slot;
    last_begin.abort = abort;
    last_begin.rc = rc;
}

/* an end-like call: refs left, or -1 with nothing done */
void
model_after_end(int i, int rc)
{
    model_failed(rc);
    if (rc < 0)
        return;
    model_give_back(i, 1);
    CHECK(lax || rc == (doms[i].dead ? 0 : doms[i].model), "returned refs %d, model %d",
          rc, doms[i].model);
}

int
model_waiters_of(int i)
{
    int n = 0;
    for (int k = 0; k < npending; k++)
        n += pending[k].dom == i;
    for (int k = 0; k < ndetached; k++)
        n += detached[k].dom == i;
    return n;
}

void
model_check_domain(int i)
{
    mj_domain *d = doms[i].d;
    bool alive = mj_domain_alive(d);

    if (lax) {
        doms[i].dead = !alive;
        doms[i].model = mj_domain_refs(d);
    }
    CHECK(alive == !doms[i].dead, "domain %d alive %d, model refs %d (dead %d)",
          i, alive, doms[i].model, doms[i].dead);
    if (!alive) {
        CHECK(mj_domain_refs(d) == 0, "dead with refs %d", mj_domain_refs(d));
        return;
    }
    CHECK(mj_domain_refs(d) == doms[i].model, "domain %d refs %d, model %d", i,
          mj_domain_refs(d), doms[i].model);
    int active = mj_domain_active_job(d);
    int async_job = mj_domain_async_job(d);
    int phase = mj_domain_phase(d);
    uint64_t mask = mj_domain_mask(d);
    int queued = mj_domain_jobs_queued(d);
    int agent = mj_domain_agent_job(d);
    int holders = (active != MJ_JOB_NONE) + (async_job != MJ_ASYNC_JOB_NONE) +
                  (agent != MJ_AGENT_JOB_NONE);

    CHECK(agent >= 0 && agent < MJ_AGENT_JOB_LAST, "agent %d", agent);
    if (agent == MJ_AGENT_JOB_NONE) {
        CHECK(mj_domain_agent_owner_thread(d) == 0, "agent owner without an agent job");
        CHECK(mj_domain_agent_owner_api(d) == NULL, "agent owner API without an agent job");
    }

    CHECK(active >= 0 && active < MJ_JOB_LAST && active != MJ_JOB_ASYNC, "active %d", active);
    CHECK(async_job >= 0 && async_job < MJ_ASYNC_JOB_LAST, "async %d", async_job);
    CHECK(phase >= 0 && phase < MJ_PHASE_LAST, "phase %d", phase);
    CHECK(queued >= holders && queued <= holders + model_waiters_of(i),
          "domain %d: jobs_queued %d, holders %d (active %d, async %d), waiters %d",
          i, queued, holders, active, async_job, model_waiters_of(i));
    if (async_job == MJ_ASYNC_JOB_NONE) {
        CHECK(phase == 0, "phase %d without an async job", phase);
        CHECK(mask == MJ_DEFAULT_JOB_MASK, "mask %#llx without an async job",
              (unsigned long long)mask);
        CHECK(!mj_domain_abort_requested(d), "abort flag without an async job");
        CHECK(mj_domain_async_owner_thread(d) == 0, "async owner without an async job");
        CHECK(mj_domain_async_owner_api(d) == NULL, "async owner API without an async job");
        CHECK(mj_domain_job_info_type(d) == MJ_JOB_INFO_NONE, "job info without an async job");
        CHECK(mj_domain_job_elapsed(d) == 0.0, "elapsed without an async job");
        CHECK(mj_domain_api_flags(d) == 0, "apiFlags without an async job");
        CHECK(mj_domain_async_paused(d) == 0 && mj_domain_postcopy(d) == 0,
              "post-copy without an async job");
    } else {
        CHECK(mask & MJ_JOB_MASK(MJ_JOB_DESTROY), "mask %#llx lacks DESTROY",
              (unsigned long long)mask);
        CHECK(mj_domain_job_elapsed(d) >= 0.0, "negative elapsed");
    }
    if (active == MJ_JOB_NONE) {
        CHECK(mj_domain_owner_thread(d) == 0, "owner without a job");
        CHECK(mj_domain_owner_api(d) == NULL, "owner API without a job");
    }
    int info = mj_domain_job_info_type(d);
    CHECK(info >= 0 && info < MJ_JOB_INFO_LAST, "job info type %d", info);
    const char *name = mj_domain_name(d);
    CHECK(name && strcmp(name, i ? "vm1" : "vm0") == 0, "name");
}

void
model_drop_detached(int k)
{
    detached[k] = detached[--ndetached];
}

/* a waiter resolved with rc (0 held, -1 failed) */
void
model_resolved(waiter_t w, int rc)
{
    if (rc < 0 || w.abort)
        model_give_back(w.dom, 1);
    else
        model_mine(w.dom, w.slot, true);
}

/* may this input end the sync / async job now?  Only one it collected
 * (or none at all: then the end fails cleanly) */
bool
model_may_end_sync(int i)
{
    return lax || doms[i].dead || doms[i].sync_mine ||
           mj_domain_active_job(doms[i].d) == MJ_JOB_NONE;
}

bool
model_may_end_async(int i)
{
    return lax || doms[i].dead || doms[i].async_mine ||
           mj_domain_async_job(doms[i].d) == MJ_ASYNC_JOB_NONE;
}

bool
model_may_end_agent(int i)
{
    return lax || doms[i].dead || doms[i].agent_mine ||
           mj_domain_agent_job(doms[i].d) == MJ_AGENT_JOB_NONE;
}

void
model_after_end_sync(int i, int rc)
{
    model_after_end(i, rc);
    if (rc >= 0)
        doms[i].sync_mine = false;
}

void
model_after_end_async(int i, int rc)
{
    model_after_end(i, rc);
    if (rc >= 0)
        doms[i].async_mine = false;
}
