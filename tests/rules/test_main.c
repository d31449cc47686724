#include "rules_test.h"

#include <stdlib.h>

int main(void)
{
    int failed = 0;
    failed += _cmocka_run_group_tests("triggers", vg_trigger_tests, vg_trigger_tests_n, NULL, NULL);
    failed += _cmocka_run_group_tests("limits", vg_limits_tests, vg_limits_tests_n, NULL, NULL);
    failed += _cmocka_run_group_tests("compile", vg_compile_tests, vg_compile_tests_n, NULL, NULL);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
