#include "engine/version.h"

const char *vg_version(void)
{
    return VG_VERSION;
}
