/* Runs `vigil upload` (vg_cmd_egress_put) on its own, until the lead wires it into main.c. */
#include "egress/egress.h"

int main(int argc, char **argv)
{
    return vg_cmd_egress_put(argc, argv);
}
