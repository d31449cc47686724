#include "tests/lib/vg_test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int skipped;

void vg__test_skipped(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("# SKIP: ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    skipped++;
}

static bool named(const char *name, int argc, char **argv, int first)
{
    for (int i = first; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return false;
}

int vg_test_main(int argc, char **argv, const char *group, const struct CMUnitTest *tests, size_t n,
                 CMFixtureFunction setup, CMFixtureFunction teardown)
{
    bool except = argc > 1 && strcmp(argv[1], "--except") == 0;
    int first = except ? 2 : 1;
    /* every name given must be a case: a typo in CMakeLists.txt would otherwise run nothing */
    for (int i = first; i < argc; i++) {
        bool known = false;
        for (size_t k = 0; k < n && !known; k++)
            known = strcmp(tests[k].name, argv[i]) == 0;
        if (!known) {
            fprintf(stderr, "%s: no test case named %s\n", argv[0], argv[i]);
            return 1;
        }
    }
    struct CMUnitTest *sel = calloc(n ? n : 1, sizeof(*sel));
    if (!sel)
        return 1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (argc <= first || named(tests[i].name, argc, argv, first) != except)
            sel[k++] = tests[i];
    int failed = _cmocka_run_group_tests(group, sel, k, setup, teardown);
    free(sel);
    if (failed)
        return 1;
    if (skipped) {
        printf("# %d case(s) skipped: exit 77 (CTest: SKIP_RETURN_CODE 77)\n", skipped);
        return 77;
    }
    return 0;
}
