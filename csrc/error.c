/*
 * error.c: the thread-local last error, as libvirt's virGetLastError.
 * Every failure goes through mj_error_set with a code and a format.
 */
#include "internal.h"  /* first: it sets _POSIX_C_SOURCE */

#include <stdarg.h>
#include <stdio.h>

/* long enough for any message: names are capped at MJ_NAME_MAX */
#define MESSAGE_MAX (3 * MJ_NAME_MAX)

static _Thread_local int last_code;
static _Thread_local char last_message[MESSAGE_MAX];

int
mj_error_set(int code, const char *fmt, ...)
{
    va_list args;

    last_code = code;
    va_start(args, fmt);
    vsnprintf(last_message, sizeof(last_message), fmt, args);
    va_end(args);
    return -1;
}

int mj_last_error_code(void) { return last_code; }
const char *mj_last_error_message(void) { return last_message; }

void
mj_reset_last_error(void)
{
    last_code = MJ_ERR_OK;
    last_message[0] = '\0';
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
    case MJ_ERR_SYSTEM_ERROR: return "system error";
    case MJ_ERR_NO_DOMAIN: return "Domain not found";
    case MJ_ERR_OPERATION_INVALID: return "Requested operation is not valid";
    case MJ_ERR_OPERATION_TIMEOUT: return "Timed out during operation";
    case MJ_ERR_OPERATION_ABORTED: return "operation aborted";
    case MJ_ERR_OK: break;
    }
    return NULL;
}

void mj_noop(void) { }
