/*
 * harness.h: a tiny self-contained test harness for the C tests in
 * csrc/tests/test_*.c.
 *
 * Every CHECK counts as one check; a test is a function registered in the
 * table in test_main.c.  Checks may run in any thread (the
 * counters are atomic).  A failing check prints the test name, the line,
 * the expression and expected vs got, and the run exits non-zero.
 */
#ifndef MJ_TEST_HARNESS_H
#define MJ_TEST_HARNESS_H

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

extern atomic_long h_passed;
extern atomic_long h_failed;
extern const char *h_current_test;

#define H_FAIL(...)                                                        \
    do {                                                                   \
        atomic_fetch_add(&h_failed, 1);                                    \
        flockfile(stderr);                                                 \
        fprintf(stderr, "FAIL [%s] %s:%d: ", h_current_test, __FILE__,     \
                __LINE__);                                                 \
        fprintf(stderr, __VA_ARGS__);                                      \
        fputc('\n', stderr);                                               \
        funlockfile(stderr);                                               \
    } while (0)

#define H_PASS() atomic_fetch_add(&h_passed, 1)

/* a boolean check */
#define CHECK(cond)                                                        \
    do {                                                                   \
        if (cond) H_PASS();                                                \
        else H_FAIL("CHECK(%s)", #cond);                                   \
    } while (0)

/* a boolean check with context printed on failure */
#define CHECKF(cond, ...)                                                  \
    do {                                                                   \
        if (cond) H_PASS();                                                \
        else { H_FAIL("CHECK(%s)", #cond);                                 \
               fprintf(stderr, "    context: ");                          \
               fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); }        \
    } while (0)

/* integer equality: expected vs got */
#define CHECK_INT(got, expected)                                           \
    do {                                                                   \
        long long h_g_ = (long long)(got);                                 \
        long long h_e_ = (long long)(expected);                            \
        if (h_g_ == h_e_) H_PASS();                                        \
        else H_FAIL("%s: expected %lld (%s), got %lld", #got, h_e_,        \
                    #expected, h_g_);                                      \
    } while (0)

/* unsigned 64-bit equality, printed in hex */
#define CHECK_HEX(got, expected)                                           \
    do {                                                                   \
        unsigned long long h_g_ = (unsigned long long)(got);               \
        unsigned long long h_e_ = (unsigned long long)(expected);          \
        if (h_g_ == h_e_) H_PASS();                                        \
        else H_FAIL("%s: expected 0x%llx, got 0x%llx", #got, h_e_, h_g_);  \
    } while (0)

/* string equality; either side may be NULL */
#define CHECK_STR(got, expected)                                           \
    do {                                                                   \
        const char *h_g_ = (got);                                          \
        const char *h_e_ = (expected);                                     \
        if ((h_g_ == NULL && h_e_ == NULL) ||                              \
            (h_g_ != NULL && h_e_ != NULL && strcmp(h_g_, h_e_) == 0))     \
            H_PASS();                                                      \
        else H_FAIL("%s: expected %s%s%s, got %s%s%s", #got,               \
                    h_e_ ? "\"" : "", h_e_ ? h_e_ : "NULL",                \
                    h_e_ ? "\"" : "", h_g_ ? "\"" : "",                    \
                    h_g_ ? h_g_ : "NULL", h_g_ ? "\"" : "");               \
    } while (0)

/* the calling thread's last error is exactly (code, message) */
#define CHECK_ERR(code, message)                                           \
    do {                                                                   \
        CHECK_INT(mj_last_error_code(), (code));                           \
        CHECK_STR(mj_last_error_message(), (message));                     \
    } while (0)

/* a double within [lo, hi] */
#define CHECK_RANGE(got, lo, hi)                                           \
    do {                                                                   \
        double h_g_ = (double)(got);                                       \
        double h_lo_ = (double)(lo), h_hi_ = (double)(hi);                 \
        if (h_g_ >= h_lo_ && h_g_ <= h_hi_) H_PASS();                      \
        else H_FAIL("%s: expected within [%.3f, %.3f], got %.4f", #got,    \
                    h_lo_, h_hi_, h_g_);                                   \
    } while (0)

#endif
