/*
 * error.c: the thread-local last error, as libvirt's virGetLastError.
 * Every failure goes through mj_error_set with a code and a format; a text
 * that more than one module reports has its own function here, so that it
 * is written once (mj_error_no_memory, mj_error_check_range,
 * mj_error_invalid_job; mj_error_no_domain is domain.c's).
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

/* Errors form a small per-thread stack, newest on top: a failing call
 * pushes its error and a reader takes it off (mj_error_take).  A call made
 * in between -- by a signal handler that runs right after the failing call
 * returns -- pushes and takes its own error above, so the first call's
 * error is still there for its reader.  Past MJ_ERROR_DEPTH the oldest
 * error is dropped. */
#define MJ_ERROR_DEPTH 16

typedef struct {
    int code;
    char message[MJ_ERROR_MAX];
} error_entry;

static _Thread_local error_entry error_stack[MJ_ERROR_DEPTH];
static _Thread_local unsigned error_top;     /* entries pushed, not taken */
static _Thread_local unsigned error_pushed;  /* ever: the next slot's index */

int
mj_error_set(int code, const char *fmt, ...)
{
    error_entry *e = &error_stack[error_pushed++ % MJ_ERROR_DEPTH];
    va_list args;

    e->code = code;
    va_start(args, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, args);
    va_end(args);
    if (error_top < MJ_ERROR_DEPTH)
        error_top++;
    return -1;
}

static const error_entry *
error_newest(void)
{
    return error_top ? &error_stack[(error_pushed - 1) % MJ_ERROR_DEPTH] : NULL;
}

int
mj_last_error_code(void)
{
    const error_entry *e = error_newest();

    return e ? e->code : MJ_ERR_OK;
}

const char *
mj_last_error_message(void)
{
    const error_entry *e = error_newest();

    return e ? e->message : "";
}

int
mj_error_take(char *buf, size_t size)
{
    const error_entry *e = error_newest();
    int code = e ? e->code : MJ_ERR_OK;

    if (buf && size)
        snprintf(buf, size, "%s", e ? e->message : "");
    if (e) {
        error_top--;
        error_pushed--;
    }
    return code;
}

void
mj_reset_last_error(void)
{
    error_top = 0;
}

/* virerror.c's prefixes for the codes we report */
const char *
mj_error_prefix(int code)
{
    switch ((mj_error_code)code) {
    case MJ_ERR_INTERNAL_ERROR: return "internal error";
    case MJ_ERR_NO_MEMORY: return "out of memory";
    case MJ_ERR_INVALID_ARG: return "invalid argument";
    case MJ_ERR_OPERATION_FAILED: return "operation failed";
    case MJ_ERR_XML_ERROR: return "XML error";
    case MJ_ERR_SYSTEM_ERROR: return "system error";
    case MJ_ERR_NO_DOMAIN: return "Domain not found";
    case MJ_ERR_OPERATION_INVALID: return "Requested operation is not valid";
    case MJ_ERR_OPERATION_TIMEOUT: return "Timed out during operation";
    case MJ_ERR_ARGUMENT_UNSUPPORTED: return "argument unsupported";
    case MJ_ERR_OPERATION_ABORTED: return "operation aborted";
    case MJ_ERR_OPERATION_UNSUPPORTED: return "Operation not supported";
    case MJ_ERR_OK: break;
    }
    return NULL;
}

/* ---- the texts more than one module reports ----------------------------- */

int
mj_error_no_memory(void)
{
    return mj_error_set(MJ_ERR_NO_MEMORY, "out of memory");
}

int
mj_error_check_range(int value, int last, const char *what)
{
    if (value < 0 || value >= last)
        return mj_error_set(MJ_ERR_INVALID_ARG, "invalid %s %d", what, value);
    return 0;
}

int
mj_error_invalid_job(void)
{
    return mj_error_set(MJ_ERR_INTERNAL_ERROR, "Attempt to start invalid job");
}

int
mj_error_check_wait_for(double wait_for)
{
    if (isnan(wait_for))
        return mj_error_set(MJ_ERR_INVALID_ARG, "wait_for must be a number");
    return 0;
}
