/* Test-only entry point for `vigil dump` until main.c dispatches to vg_cmd_dump(). */
#include "engine/cmd_dump.h"

int main(int argc, char **argv)
{
    return vg_cmd_dump(argc - 1, argv + 1);
}
