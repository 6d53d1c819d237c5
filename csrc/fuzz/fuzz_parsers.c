/*
 * fuzz_parsers.c: libFuzzer target for the enum <-> string tables.
 *
 * Input: byte 0 is an async job kind (as a signed byte, so out-of-range
 * kinds come up), bytes 1-4 a little-endian int32 for the *_to_string
 * functions, the rest a NUL-terminated string for every *_from_string.
 * Checks, besides ASan/UBSan's own: every from_string result is -1 or in
 * range and round-trips through to_string (the "preform2" alias and the
 * job table's second "none" aside); mj_async_job_phase_from_string agrees
 * with the phase table for migrations and accepts only "none" otherwise;
 * to_string is NULL exactly out of range.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migjob.h"
#include "testing.h"  /* mj_noop */

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "fuzz_parsers: %s:%d: check failed: %s: ",    \
                    __FILE__, __LINE__, #cond);                           \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
            abort();                                                      \
        }                                                                 \
    } while (0)

typedef const char *(*to_fn)(int);
typedef int (*from_fn)(const char *);

static void
check_table(const char *what, to_fn to, from_fn from, int last,
            const char *text, int number)
{
    int r = from(text);

    CHECK(r >= -1 && r < last, "%s_from_string(\"%s\") = %d", what, text, r);
    if (r >= 0) {
        const char *back = to(r);

        CHECK(back != NULL, "%s %d has no string", what, r);
        CHECK(strcmp(back, text) == 0 ||
              (from == mj_phase_from_string && r == MJ_PHASE_PERFORM2 &&
               strcmp(text, "preform2") == 0),
              "%s \"%s\" -> %d -> \"%s\"", what, text, r, back);
    }
    CHECK(from(NULL) == -1, "%s_from_string(NULL)", what);

    const char *s = to(number);
    CHECK((s != NULL) == (number >= 0 && number < last),
          "%s_to_string(%d) = %p", what, number, (const void *)s);
    if (s) {
        int again = from(s);
        /* "none" names both JOB_NONE and JOB_ASYNC: the first wins */
        CHECK(again == number || strcmp(to(again), s) == 0,
              "%s %d -> \"%s\" -> %d", what, number, s, again);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    int async_job = (int8_t)data[0];
    uint32_t raw = (uint32_t)data[1] | (uint32_t)data[2] << 8 |
                   (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
    int number = (int)(int32_t)raw;
    size_t len = size - 5;
    char *text = malloc(len + 1);

    if (!text)
        return 0;
    memcpy(text, data + 5, len);
    text[len] = '\0';

    check_table("job", mj_job_to_string, mj_job_from_string, MJ_JOB_LAST,
                text, number);
    check_table("async_job", mj_async_job_to_string, mj_async_job_from_string,
                MJ_ASYNC_JOB_LAST, text, number);
    check_table("phase", mj_phase_to_string, mj_phase_from_string,
                MJ_PHASE_LAST, text, number);
    check_table("job_info_type", mj_job_info_type_to_string,
                mj_job_info_type_from_string, MJ_JOB_INFO_LAST, text, number);
    check_table("agent_job", mj_agent_job_to_string, mj_agent_job_from_string,
                MJ_AGENT_JOB_LAST, text, number);

    bool migration = async_job == MJ_ASYNC_JOB_MIGRATION_OUT ||
                     async_job == MJ_ASYNC_JOB_MIGRATION_IN;
    int r = mj_async_job_phase_from_string(async_job, text);
    if (migration)
        CHECK(r == mj_phase_from_string(text), "kind %d \"%s\" -> %d",
              async_job, text, r);
    else
        CHECK(r == (strcmp(text, "none") == 0 ? 0 : -1), "kind %d \"%s\" -> %d",
              async_job, text, r);
    CHECK(mj_async_job_phase_from_string(async_job, NULL) == 0, "NULL text");

    const char *s = mj_async_job_phase_to_string(async_job, number);
    if (migration)
        CHECK(s == mj_phase_to_string(number), "kind %d phase %d", async_job, number);
    else
        CHECK(s && strcmp(s, "none") == 0, "kind %d phase %d", async_job, number);

    const char *prefix = mj_error_prefix(number);
    if (prefix)
        CHECK(*prefix, "empty prefix for %d", number);
    mj_noop();
    free(text);
    return 0;
}
