/* Shared pieces of the cmocka test binaries (link vg_testlib).
 *
 * Skipping: a case that cannot run here (not root, a runtime missing) calls VG_SKIP("why").
 * cmocka's own skip() leaves the exit status 0, so CTest would report the test as passed;
 * vg_test_main() exits 77 instead, which CTest reports as skipped for tests registered with
 * SKIP_RETURN_CODE 77. vg_add_cmocka_test() (tests/CMakeLists.txt) registers every case that may
 * skip as a CTest test of its own, so a skip never hides the cases that did run.
 *
 * Case selection, for that registration and by hand:
 *   binary                  every case
 *   binary CASE...          only these
 *   binary --except CASE... every case but these
 */
#ifndef VG_TEST_LIB_H
#define VG_TEST_LIB_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Says why on stdout and ends the case as skipped. */
#define VG_SKIP(...)                                                                               \
    do {                                                                                           \
        vg__test_skipped(__VA_ARGS__);                                                             \
        skip();                                                                                    \
    } while (0)

void vg__test_skipped(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs the selected cases of tests[0..n) as one cmocka group. Returns the process exit status:
 * 1 if a case failed (or the arguments name no case), else 77 if a case called VG_SKIP, else 0. */
int vg_test_main(int argc, char **argv, const char *group, const struct CMUnitTest *tests, size_t n,
                 CMFixtureFunction setup, CMFixtureFunction teardown);

#define VG_TEST_MAIN(tests, setup, teardown)                                                       \
    vg_test_main(argc, argv, #tests, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)

#endif
