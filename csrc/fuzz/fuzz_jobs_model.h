/*
 * fuzz_jobs_model.h: the reference-count model of fuzz_jobs.c (see its
 * top comment for the invariants): what this input holds and waits for,
 * and the checks of every call's result against it (fuzz_jobs_model.c).
 * The driver (fuzz_jobs.c) decodes the input and makes the calls.
 */
#ifndef FUZZ_JOBS_MODEL_H
#define FUZZ_JOBS_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "migjob.h"

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "fuzz_jobs: %s:%d: check failed: %s: ",       \
                    __FILE__, __LINE__, #cond);                           \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
            abort();                                                      \
        }                                                                 \
    } while (0)

#define NDOM 2
#define MAXW 300

typedef struct {
    mj_domain *d;
    int model;        /* libvirt refs as the model counts them */
    bool dead;
    bool sync_mine;   /* this input holds the sync slot and knows it */
    bool async_mine;  /* same for the async slot */
    bool agent_mine;  /* and the agent slot */
} dom_t;

/* a waiter: which domain, the slot a grant gives it (an mj_slot), and
 * whether it is an AbortJob's (a grant applies the abort and ends it) */
typedef struct { int dom; int slot; bool abort; mj_waiter *w; } waiter_t;

/* the previous operation, when it was a begin: what mj_begin_abandon
 * right after it must give back (as for a caller interrupted the instant
 * the begin returned) */
typedef struct { bool valid; int dom; int slot; bool abort; int rc; } model_last_begin_t;
extern model_last_begin_t last_begin;

extern dom_t doms[NDOM];
extern waiter_t pending[MAXW];     /* this thread's pending waiters, bottom first */
extern int npending;
extern waiter_t detached[MAXW];    /* waiters handed to the notifier */
extern int ndetached;
/* FUZZ_LAX=1 also ends jobs granted to waiters not yet collected (found
 * BUG 7: a later cancel of such a waiter released the slot a second time,
 * ending whoever held it by then; fixed with grant tokens).  The refcount
 * model cannot follow that (it does not know which waiter a grant went
 * to), so in lax mode refs and death are read from the core and only the
 * other invariants, the sanitizers and the teardown's leak check apply. */
extern bool lax;

void model_failed(int rc);
void model_give_back(int i, int n);
void model_mine(int i, int slot, bool held);
void model_after_begin(int i, int rc, int slot);
void model_note_begin(int i, int rc, int slot, bool abort);
void model_after_end(int i, int rc);
int model_waiters_of(int i);
void model_check_domain(int i);
void model_drop_detached(int k);
void model_resolved(waiter_t w, int rc);
bool model_may_end_sync(int i);
bool model_may_end_async(int i);
bool model_may_end_agent(int i);
void model_after_end_sync(int i, int rc);
void model_after_end_async(int i, int rc);

#endif
