#include "config/error.h"

#include <string.h>

const char *vg_strerror(int err)
{
    switch (err) {
#define VG__ERR_MSG(name, val, msg)                                                                \
    case VG_##name:                                                                                \
        return msg;
        VG_ERRNO_MAP(VG__ERR_MSG)
#undef VG__ERR_MSG
    case 0:
        return "success";
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}

const char *vg_err_name(int err)
{
    switch (err) {
#define VG__ERR_NAME(name, val, msg)                                                               \
    case VG_##name:                                                                                \
        return "VG_" #name;
        VG_ERRNO_MAP(VG__ERR_NAME)
#undef VG__ERR_NAME
    case 0:
        return "VG_OK";
    default:
        return "VG_EUNKNOWN";
    }
}
