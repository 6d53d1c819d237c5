/*
 * test_notify.c: notifiers: waiters detached onto an event loop
 *
 * Part of the C test program; build and run with
 * csrc/tests/run.sh [plain|thread|address] [filter].
 */
#define _POSIX_C_SOURCE 200809L

#include "helpers.h"

#include <poll.h>

/* ======================================================================== */
/* notifiers (event-loop waiters)                                           */

static bool notify_fd_readable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static bool notify_fd_wait_readable(int fd, double limit)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, (int)(limit * 1000)) == 1 && (p.revents & POLLIN);
}

void test_notifier_basics(void)
{
    mj_domain *d = fresh("vm-nf", 5.0, 0, false);
    mj_notifier *n = mj_notifier_new();
    CHECK(n != NULL);
    if (!n) {
        dispose(d);
        return;
    }
    int fd = mj_notifier_fd(n);
    CHECK(fd >= 0);
    CHECK(!notify_fd_readable(fd));
    CHECK(mj_notifier_take(n) == NULL);
    CHECK(t_detach(n) == NULL);      /* nothing pending */

    /* a queued waiter moves onto the notifier */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "loop", 5.0, 0), MJ_WAITING);
    mj_waiter *w = t_detach(n);
    CHECK(w != NULL);
    CHECK_INT(mj_pending_count(), 0);
    if (!w) {
        mj_notifier_free(n);
        dispose(d);
        return;
    }
    CHECK_INT(t_poll(w), MJ_WAITING);
    CHECK_RANGE(mj_waiter_remaining(w), 0.5, 5.0);
    CHECK(!notify_fd_readable(fd));
    CHECK(mj_notifier_take(n) == NULL);
    CHECK_INT(mj_domain_refs(d), 3);
    CHECK_INT(mj_domain_jobs_queued(d), 2);
    /* the grant lists it and makes the fd readable */
    CHECK_INT(mj_end_job(d), 2);
    CHECK(notify_fd_readable(fd));
    CHECK(mj_notifier_take(n) == w);
    CHECK(mj_notifier_take(n) == NULL);
    CHECK(!notify_fd_readable(fd));
    CHECK_INT(t_poll(w), 0);           /* held; w is gone */
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_QUERY);
    CHECK_STR(mj_domain_owner_api(d), "loop");
    CHECK_INT(mj_end_job(d), 1);

    /* resolved before the detach: listed at once */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "loop", 5.0, 0), MJ_WAITING);
    CHECK_INT(mj_end_job(d), 2);               /* granted to the pending one */
    w = t_detach(n);
    CHECK(w != NULL);
    CHECK(notify_fd_readable(fd));
    CHECK(mj_notifier_take(n) == w);
    CHECK_INT(t_poll(w), 0);
    CHECK_INT(mj_domain_active_job(d), MJ_JOB_MODIFY);

    /* a failure is listed too: remove fails the waiter */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "loop", 5.0, 0), MJ_WAITING);
    w = t_detach(n);
    CHECK(!notify_fd_readable(fd));
    CHECK_INT(mj_domain_refs(d), 3);
    mj_domain_pin(d);
    CHECK_INT(mj_domain_remove(d), 2);
    CHECK(notify_fd_readable(fd));
    CHECK(mj_notifier_take(n) == w);
    mj_reset_last_error();
    CHECK_INT(t_poll(w), -1);
    CHECK_ERR(MJ_ERR_NO_DOMAIN, "no domain with matching name 'vm-nf'");
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_end_job(d), 0);
    mj_domain_unpin(d);
    mj_domain_unpin(d);

    /* timeouts are not announced: the loop polls at the deadline */
    d = fresh("vm-nf2", 5.0, 0, false);
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "loop", 0.05, 0), MJ_WAITING);
    w = t_detach(n);
    CHECK_RANGE(mj_waiter_remaining(w), 0.0, 0.05);
    sleep_s(0.06);
    CHECK(mj_waiter_remaining(w) == 0.0);
    mj_reset_last_error();
    CHECK_INT(t_poll(w), -1);
    CHECK_ERR(MJ_ERR_OPERATION_TIMEOUT,
              "cannot acquire state change lock (held by monitor=holder)");
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_domain_jobs_queued(d), 1);

    /* cancel while queued, and cancel after a grant (the job is ended and
     * handed on) */
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "loop", 5.0, 0), MJ_WAITING);
    w = t_detach(n);
    t_cancel(w);
    CHECK_INT(mj_domain_refs(d), 2);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "loop", 5.0, 0), MJ_WAITING);
    w = t_detach(n);
    worker next;
    worker_init(&next, d, W_SYNC, MJ_JOB_MODIFY, "next", 10.0);
    worker_start_queued(&next, 4);
    CHECK_RANGE(mj_end_job(d), 2, 3);
    CHECK(notify_fd_wait_readable(fd, SLACK));
    t_cancel(w);                       /* listed, never taken */
    worker_join(&next);
    CHECK_INT(next.rc, 0);
    CHECK(mj_notifier_take(n) == NULL);        /* cancel unlisted it */
    CHECK(!notify_fd_readable(fd));
    CHECK_INT(mj_domain_refs(d), 1);
    CHECK_INT(mj_domain_jobs_queued(d), 0);

    /* the notifier outlives its owner's reference while waiters use it */
    CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
    CHECK_INT(mj_begin_job(d, MJ_JOB_QUERY, "loop", 5.0, 0), MJ_WAITING);
    w = t_detach(n);
    mj_notifier_free(n);
    CHECK_INT(mj_end_job(d), 2);
    CHECK_INT(t_poll(w), 0);           /* frees the notifier too */
    CHECK_INT(mj_end_job(d), 1);
    dispose(d);
}

/* one event loop serving many waiters of several domains in FIFO order */
void test_notifier_event_loop(void)
{
    enum { DOMS = 3, PER = 6 };
    mj_domain *ds[DOMS];
    mj_waiter *ws[DOMS][PER];
    int served[DOMS];
    char apis[DOMS][PER][16];
    mj_notifier *n = mj_notifier_new();
    if (!n) {
        H_FAIL("mj_notifier_new failed");
        return;
    }
    atomic_int rel;
    atomic_init(&rel, 0);
    worker holders[DOMS];
    for (int i = 0; i < DOMS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "vm-loop%d", i);
        ds[i] = fresh(name, 10.0, 0, false);
        served[i] = 0;
        worker_init(&holders[i], ds[i], W_SYNC, MJ_JOB_MODIFY, "holder", 1.0);
        holders[i].release = &rel;
        worker_start(&holders[i]);
        CHECK(wait_flag(&holders[i].acquired, SLACK));
    }
    for (int k = 0; k < PER; k++)
        for (int i = 0; i < DOMS; i++) {
            snprintf(apis[i][k], sizeof(apis[i][k]), "w%d", k);
            CHECK_INT(mj_begin_job(ds[i], k % 2 ? MJ_JOB_QUERY : MJ_JOB_MODIFY,
                                   apis[i][k], 10.0, 0), MJ_WAITING);
            ws[i][k] = t_detach(n);
        }
    atomic_store(&rel, 1);
    int total = 0;
    double limit = now_s() + 10.0;
    int fd = mj_notifier_fd(n);
    while (total < DOMS * PER && now_s() < limit) {
        if (!notify_fd_wait_readable(fd, 0.2))
            continue;
        mj_waiter *w;
        while ((w = mj_notifier_take(n)) != NULL) {
            int di = -1, ki = -1;
            for (int i = 0; i < DOMS; i++)
                for (int k = 0; k < PER; k++)
                    if (ws[i][k] == w) {
                        di = i;
                        ki = k;
                    }
            if (di < 0) {
                H_FAIL("notifier listed an unknown waiter");
                continue;
            }
            int rc = t_poll(w);
            ws[di][ki] = NULL;
            CHECKF(rc == 0, "waiter %d/%d: rc %d", di, ki, rc);
            if (rc != 0)
                continue;
            CHECKF(ki == served[di], "domain %d served waiter %d, expected %d",
                   di, ki, served[di]);
            CHECK_STR(mj_domain_owner_api(ds[di]), apis[di][ki]);
            served[di]++;
            total++;
            mj_end_job(ds[di]);    /* hands the slot to the next in line */
        }
    }
    CHECK_INT(total, DOMS * PER);
    for (int i = 0; i < DOMS; i++) {
        worker_join(&holders[i]);
        for (int k = 0; k < PER; k++)
            if (ws[i][k])
                t_cancel(ws[i][k]);
        CHECK_INT(mj_domain_refs(ds[i]), 1);
        CHECK_INT(mj_domain_jobs_queued(ds[i]), 0);
        dispose(ds[i]);
    }
    mj_notifier_free(n);
}


/* A detached waiter is granted (listed, the fd readable) and, before the
 * loop polls it, another caller ends the job it was given.  The loop then
 * gives the waiter up: mj_waiter_cancel finds the job gone and must give
 * back nothing, unlist the waiter and leave the creator's reference. */
void test_notifier_cancel_after_foreign_end(void)
{
    mj_notifier *n = mj_notifier_new();
    if (!n) {
        H_FAIL("mj_notifier_new failed");
        return;
    }
    int fd = mj_notifier_fd(n);
    for (int async = 0; async <= 1; async++) {
        mj_domain *d = fresh(async ? "vm-nf-ended-async" : "vm-nf-ended",
                             5.0, 0, false);
        CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "holder", 1.0, -1), 0);
        int rc = async
            ? mj_begin_async_job(d, MJ_ASYNC_JOB_SAVE, "loop", 5.0, 0)
            : mj_begin_job(d, MJ_JOB_QUERY, "loop", 5.0, 0);
        CHECK_INT(rc, MJ_WAITING);
        mj_waiter *w = t_detach(n);
        CHECK(w != NULL);
        if (!w) {
            dispose(d);
            break;
        }
        CHECK_INT(mj_pending_count(), 0);
        CHECK(!notify_fd_readable(fd));
        CHECK_INT(mj_domain_refs(d), 3);

        /* the holder ends: the slot goes to the detached waiter */
        CHECK_INT(mj_end_job(d), 2);
        CHECK(notify_fd_readable(fd));
        if (async)
            CHECK_STR(mj_domain_async_owner_api(d), "loop");
        else
            CHECK_STR(mj_domain_owner_api(d), "loop");

        /* another caller ends it before the loop polls the waiter */
        CHECK_INT(end_job_elsewhere(d, async), 1);
        CHECK_INT(mj_domain_refs(d), 1);
        CHECK_INT(mj_domain_jobs_queued(d), 0);

        t_cancel(w);
        CHECKF(mj_domain_alive(d), "%s: cancelling the waiter killed the "
               "domain", async ? "async" : "sync");
        CHECK_INT(mj_domain_refs(d), 1);
        CHECK_INT(mj_domain_jobs_queued(d), 0);
        CHECK_INT(mj_domain_active_job(d), MJ_JOB_NONE);
        CHECK_INT(mj_domain_async_job(d), MJ_ASYNC_JOB_NONE);
        CHECK(mj_notifier_take(n) == NULL);   /* cancel unlisted it */
        CHECK(!notify_fd_readable(fd));
        /* the domain still works */
        CHECK_INT(mj_begin_job(d, MJ_JOB_MODIFY, "after", 1.0, -1), 0);
        CHECK_INT(mj_end_job(d), 1);
        dispose(d);
    }
    mj_notifier_free(n);
}
