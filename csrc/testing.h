/*
 * testing.h: hooks for the project's own tests.  Not part of the API a
 * daemon uses; cffi exposes them so the Python tests can reach them.
 */
#ifndef MIGJOB_TESTING_H
#define MIGJOB_TESTING_H

#ifdef __cplusplus
extern "C" {
#endif

/* The calling thread's next begin that returns "granted" (a begin, an
 * mj_pending_wait or an mj_waiter_poll returning 0) raises signal `signo`
 * in this thread just before it returns; once, then the hook is off.
 * 0 turns it off.  Lets a test land a signal exactly at that return. */
void mj_testing_signal_on_grant(int signo);

/* Set a live domain's refs to `refs` (> 0), as if that many references
 * were held: lets a test reach MJ_REFS_MAX without 2^31 calls.  The test
 * must set it back before the domain goes.  -1 when dead or refs <= 0. */
struct mj_domain;
int mj_testing_set_refs(struct mj_domain *d, int refs);

/* Does nothing: the benchmarks' floor, what any call into the core costs
 * at least (python -m pymigjob bench, benchmarks/). */
void mj_noop(void);

#ifdef __cplusplus
}
#endif
#endif /* MIGJOB_TESTING_H */
