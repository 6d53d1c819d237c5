/*
 * notes.c: what this thread's begins left behind, and giving it back.
 *
 * CPython runs a signal handler the moment a C call returns, before the
 * caller has stored the result: an exception raised there loses whatever
 * the begin left behind, a job granted or a place in the queue.  So every
 * begin notes here what it left, and mj_begin_abandon gives back the
 * newest note of a domain and slot.  A handler's own begins note above the
 * interrupted one and close their notes as they finish (an end closes the
 * grant's note), so the interrupted begin's note is the newest open one.
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */

#include <stdlib.h>

typedef struct {
    const mj_domain *dom;     /* compared, never followed */
    mj_waiter *waiter;        /* MJ_NOTE_WAITING: on this thread's pending stack */
    uint64_t serial;          /* MJ_NOTE_GRANTED: the grant */
    unsigned char kind;       /* mj_note_kind */
    unsigned char slot;       /* mj_slot: nested jobs are in the sync slot */
} notes_entry;

#define NOTES_KEPT 64         /* notes kept; older ones are forgotten */

static _Thread_local notes_entry notes_ring[NOTES_KEPT];
static _Thread_local unsigned notes_next;

void
mj_note_add(const mj_domain *d, mj_note_kind kind, int slot,
            uint64_t serial, mj_waiter *w)
{
    notes_entry *n = &notes_ring[notes_next++ % NOTES_KEPT];

    n->dom = d;
    n->waiter = w;
    n->serial = serial;
    n->kind = (unsigned char)kind;
    n->slot = (unsigned char)slot;
}

/* the newest open note matching (kind MJ_NOTE_CLOSED: any open one), or
 * NULL */
static notes_entry *
notes_find(const mj_domain *d, int slot, mj_note_kind kind,
           uint64_t serial, const mj_waiter *w)
{
    for (unsigned i = 1; i <= NOTES_KEPT && i <= notes_next; i++) {
        notes_entry *n = &notes_ring[(notes_next - i) % NOTES_KEPT];

        if (n->kind == MJ_NOTE_CLOSED || n->dom != d || n->slot != slot)
            continue;
        if (kind == MJ_NOTE_CLOSED ||
            (n->kind == kind && n->serial == serial && n->waiter == w))
            return n;
    }
    return NULL;
}

void
mj_note_close(const mj_domain *d, int slot, mj_note_kind kind,
              uint64_t serial, const mj_waiter *w)
{
    notes_entry *n = notes_find(d, slot, kind, serial, w);

    if (n)
        n->kind = MJ_NOTE_CLOSED;
}

int
mj_begin_failed(const mj_domain *d, int slot)
{
    mj_note_add(d, MJ_NOTE_FAILED, slot, 0, NULL);
    return -1;
}

/* give back the job granted with `serial`, if it is still that grant */
static void
notes_release_grant(mj_domain *d, int slot, uint64_t serial)
{
    char *api = NULL;
    int left = 1;

    pthread_mutex_lock(&d->lock);
    if (mj_domain_alive(d) && mj_slot_serial(d, slot) == serial) {
        api = mj_release_slot_locked(d, slot);
        left = mj_domain_drop_ref(d);
    }
    pthread_mutex_unlock(&d->lock);
    free(api);
    if (left == 0)
        mj_domain_die(d);
}

void
mj_begin_abandon(mj_domain *d, int slot)
{
    notes_entry *n = notes_find(d, slot, MJ_NOTE_CLOSED, 0, NULL);
    notes_entry note;

    if (!n)
        return;
    note = *n;
    n->kind = MJ_NOTE_CLOSED;
    if (note.kind == MJ_NOTE_GRANTED)
        notes_release_grant(d, slot, note.serial);
    else if (note.kind == MJ_NOTE_WAITING)
        mj_pending_give_up(note.waiter);
}
