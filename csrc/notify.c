/*
 * notify.c: waking waiters.  A thread's waiter is woken through its own
 * condition variable; an event loop's waiter is listed on its notifier,
 * whose eventfd the loop watches.  Lock order: domain, then notifier.
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct mj_notifier {
    pthread_mutex_t lock;
    atomic_int refs;          /* the owner's, plus one per waiter */
    int fd;
    mj_waiter *head, *tail;   /* granted or failed, not yet taken */
};

mj_notifier *
mj_notifier_new(void)
{
    mj_notifier *n = calloc(1, sizeof(*n));

    if (!n) {
        mj_error_no_memory();
        return NULL;
    }
    if ((n->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        mj_error_set(MJ_ERR_SYSTEM_ERROR, "cannot create eventfd: errno %d",
                     errno);
        free(n);
        return NULL;
    }
    pthread_mutex_init(&n->lock, NULL);
    atomic_init(&n->refs, 1);
    return n;
}

int mj_notifier_fd(const mj_notifier *n) { return n->fd; }

int
mj_notifier_waiters(const mj_notifier *n)
{
    return atomic_load_explicit(&n->refs, memory_order_acquire) - 1;
}

void
mj_notifier_ref(mj_notifier *n)
{
    atomic_fetch_add_explicit(&n->refs, 1, memory_order_relaxed);
}

void
mj_notifier_free(mj_notifier *n)
{
    if (atomic_fetch_sub_explicit(&n->refs, 1, memory_order_acq_rel) != 1)
        return;
    close(n->fd);
    pthread_mutex_destroy(&n->lock);
    free(n);
}

/* caller holds n->lock */
static void
notify_unlist(mj_notifier *n, mj_waiter *w)
{
    if (w->ready_prev)
        w->ready_prev->ready_next = w->ready_next;
    else
        n->head = w->ready_next;
    if (w->ready_next)
        w->ready_next->ready_prev = w->ready_prev;
    else
        n->tail = w->ready_prev;
    w->ready_prev = w->ready_next = NULL;
    w->ready = false;
}

void
mj_waiter_announce(mj_waiter *w)
{
    mj_notifier *n = w->notifier;

    if (!n) {
        pthread_cond_signal(&w->cond);
        return;
    }
    pthread_mutex_lock(&n->lock);
    if (!w->ready) {
        w->ready = true;
        w->ready_prev = n->tail;
        if (n->tail)
            n->tail->ready_next = w;
        else
            n->head = w;
        n->tail = w;
        if (n->head == w) {
            /* the list was empty: make the fd readable.  eventfd only
             * fails to add 1 at a counter of 2^64-2, never reached here */
            uint64_t one = 1;
            ssize_t written = write(n->fd, &one, sizeof(one));
            (void)written;
        }
    }
    pthread_mutex_unlock(&n->lock);
}

void
mj_waiter_detach_notifier(mj_waiter *w)
{
    mj_notifier *n = w->notifier;

    if (!n)
        return;
    pthread_mutex_lock(&n->lock);
    if (w->ready)
        notify_unlist(n, w);
    pthread_mutex_unlock(&n->lock);
    w->notifier = NULL;
    mj_notifier_free(n);
}

mj_waiter *
mj_notifier_take(mj_notifier *n)
{
    mj_waiter *w;

    pthread_mutex_lock(&n->lock);
    w = n->head;
    if (w)
        notify_unlist(n, w);
    if (!n->head) {
        uint64_t count;
        ssize_t got = read(n->fd, &count, sizeof(count));
        (void)got;                 /* EAGAIN: already drained */
    }
    pthread_mutex_unlock(&n->lock);
    return w;
}
