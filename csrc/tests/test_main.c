/*
 * test_main.c: the runner of the C-level tests of the migjob core
 * (csrc/migjob.h), no Python.  The tests live in test_*.c by subject (see
 * helpers.h); this file holds the table, the filter, main and the watchdog.
 *
 * Build and run with csrc/tests/run.sh [plain|thread|address] [filter].
 * The binary takes an optional substring: only tests whose name contains
 * it run.  It prints one line per test and a final "N passed, M failed"
 * (N and M count individual checks) and exits non-zero on any failure.
 * A watchdog fails the run if a single test hangs.
 */
#define _POSIX_C_SOURCE 200809L

#include "helpers.h"

#include <signal.h>
#include <unistd.h>

atomic_long h_passed;
atomic_long h_failed;
const char *h_current_test = "?";

/* seconds a single test may take before the watchdog kills the run */
#define TEST_WATCHDOG_S 180

/* ======================================================================== */
/* runner                                                                   */

typedef struct {
    const char *name;
    void (*fn)(void);
} main_test_case;

static const main_test_case main_tests[] = {
    { "enum_job", test_enum_job },
    { "enum_async_job", test_enum_async_job },
    { "enum_phase", test_enum_phase },
    { "enum_job_info_type", test_enum_job_info_type },
    { "async_job_phase_dispatch", test_async_job_phase_dispatch },
    { "constants", test_constants },
    { "error_basics", test_error_basics },
    { "error_invalid_job", test_error_invalid_job },
    { "error_end_without_job", test_error_end_without_job },
    { "error_nested_wrong_async", test_error_nested_wrong_async },
    { "error_check_migration", test_error_check_migration },
    { "phases", test_phases },
    { "refs_basic", test_refs_basic },
    { "refs_v3_change_protection", test_refs_v3_change_protection },
    { "refs_destination", test_refs_destination },
    { "refs_v3_no_change_protection", test_refs_v3_no_change_protection },
    { "refs_v2_and_p2p", test_refs_v2_and_p2p },
    { "refs_start_phase_refused", test_refs_start_phase_refused },
    { "refs_domain_disappeared", test_refs_domain_disappeared },
    { "refused_phase_changes_no_owner", test_refused_phase_changes_no_owner },
    { "claim_parked", test_claim_parked },
    { "claim_parked_not_while_driven", test_claim_parked_not_while_driven },
    { "masks", test_masks },
    { "owners_and_info", test_owners_and_info },
    { "jobs_queued", test_jobs_queued },
    { "max_queued", test_max_queued },
    { "timeouts", test_timeouts },
    { "deadline_across_slices", test_deadline_across_slices },
    { "abort", test_abort },
    { "migration_job_is_allowed", test_migration_job_is_allowed },
    { "api_flags", test_api_flags },
    { "release_and_discard", test_release_and_discard },
    { "restore_async_job", test_restore_async_job },
    { "postcopy_failed_and_resume", test_postcopy_failed_and_resume },
    { "job_data", test_job_data },
    { "wake_all_waiters", test_wake_all_waiters },
    { "many_waiters_cycles", test_many_waiters_cycles },
    { "fifo_order", test_fifo_order },
    { "mask_blocked_does_not_block_allowed",
      test_mask_blocked_does_not_block_allowed },
    { "end_async_wakes", test_end_async_wakes },
    { "async_sync_race", test_async_sync_race },
    { "nested_interleaving", test_nested_interleaving },
    { "sliced_waits", test_sliced_waits },
    { "pending_stack", test_pending_stack },
    { "cancel_after_foreign_end", test_cancel_after_foreign_end },
    { "notifier_basics", test_notifier_basics },
    { "notifier_event_loop", test_notifier_event_loop },
    { "notifier_cancel_after_foreign_end",
      test_notifier_cancel_after_foreign_end },
    { "remove_fails_waiters", test_remove_fails_waiters },
    { "cancel_waiters", test_cancel_waiters },
    { "pins_and_dead_domain", test_pins_and_dead_domain },
    { "edge_cases", test_edge_cases },
    { "expired_waiter_passed_over", test_expired_waiter_passed_over },
    { "abandon_gives_back_its_own", test_abandon_gives_back_its_own },
    { "errors_are_a_stack", test_errors_are_a_stack },
    { "refs_limit", test_refs_limit },
    { "agent_slot", test_agent_slot },
    { "agent_ignores_mask", test_agent_ignores_mask },
    { "agent_fifo_across_slots", test_agent_fifo_across_slots },
    { "nowait", test_nowait },
    { "agent_max_queued", test_agent_max_queued },
    { "mask_widening_hands_off", test_mask_widening_hands_off },
    { "uuid", test_uuid },
    { "handoff_for_others", test_handoff_for_others },
    { "stress", test_stress },
    { "stress_max_queued", test_stress_max_queued },
    { "stress_lifecycle", test_stress_lifecycle },
};

static void main_on_alarm(int sig)
{
    static const char msg1[] = "\nFAIL: watchdog: test '";
    static const char msg2[] = "' hung (deadlock or lost wake-up?)\n";
    ssize_t r;
    (void)sig;
    r = write(2, msg1, sizeof(msg1) - 1);
    r = write(2, h_current_test, strlen(h_current_test));
    r = write(2, msg2, sizeof(msg2) - 1);
    (void)r;
    _exit(3);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int ran = 0, failed_tests = 0;
    double t_all = now_s();
    signal(SIGALRM, main_on_alarm);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < sizeof(main_tests) / sizeof(main_tests[0]); i++) {
        if (filter && !strstr(main_tests[i].name, filter))
            continue;
        long f0 = atomic_load(&h_failed), p0 = atomic_load(&h_passed);
        h_current_test = main_tests[i].name;
        alarm(TEST_WATCHDOG_S);
        double t0 = now_s();
        main_tests[i].fn();
        alarm(0);
        long nf = atomic_load(&h_failed) - f0;
        long np = atomic_load(&h_passed) - p0;
        ran++;
        if (nf)
            failed_tests++;
        printf("%-4s %-40s %5ld checks  %7.3fs\n", nf ? "FAIL" : "ok",
               main_tests[i].name, np + nf, now_s() - t0);
    }
    h_current_test = "(end)";
    printf("%d tests, %d failed, %.2fs\n", ran, failed_tests, now_s() - t_all);
    long passed = atomic_load(&h_passed), failed = atomic_load(&h_failed);
    printf("%ld passed, %ld failed\n", passed, failed);
    if (ran == 0) {
        fprintf(stderr, "no test matches '%s'\n", filter ? filter : "");
        return 2;
    }
    return failed ? 1 : 0;
}
