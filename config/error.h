/* vigil error codes: 0 or a negative VG_E* value. System errors travel as -errno. */
#ifndef VG_ERROR_H
#define VG_ERROR_H

#include <errno.h>

/* XX(name, value, message). System errors keep their errno value so `-errno` is already a VG_E*. */
#define VG_ERRNO_MAP(XX)                                                                           \
    XX(EPERM, -EPERM, "operation not permitted")                                                   \
    XX(ENOENT, -ENOENT, "no such file or directory")                                               \
    XX(ESRCH, -ESRCH, "no such process")                                                           \
    XX(EINTR, -EINTR, "interrupted")                                                               \
    XX(EIO, -EIO, "input/output error")                                                            \
    XX(E2BIG, -E2BIG, "argument list too long")                                                    \
    XX(EAGAIN, -EAGAIN, "resource temporarily unavailable")                                        \
    XX(ENOMEM, -ENOMEM, "out of memory")                                                           \
    XX(EACCES, -EACCES, "permission denied")                                                       \
    XX(EBUSY, -EBUSY, "resource busy")                                                             \
    XX(EEXIST, -EEXIST, "already exists")                                                          \
    XX(ENOTDIR, -ENOTDIR, "not a directory")                                                       \
    XX(EISDIR, -EISDIR, "is a directory")                                                          \
    XX(EINVAL, -EINVAL, "invalid argument")                                                        \
    XX(EFBIG, -EFBIG, "file too large")                                                            \
    XX(ENOSPC, -ENOSPC, "no space left on device")                                                 \
    XX(ERANGE, -ERANGE, "value out of range")                                                      \
    XX(ENAMETOOLONG, -ENAMETOOLONG, "name too long")                                               \
    XX(ENOSYS, -ENOSYS, "function not implemented")                                                \
    XX(ELOOP, -ELOOP, "too many levels of symbolic links or nesting")                              \
    XX(EPROTO, -EPROTO, "protocol error")                                                          \
    XX(ECONNREFUSED, -ECONNREFUSED, "connection refused")                                          \
    XX(ECONNRESET, -ECONNRESET, "connection reset")                                                \
    XX(ETIMEDOUT, -ETIMEDOUT, "timed out")                                                         \
    XX(ECANCELED, -ECANCELED, "operation canceled")                                                \
    XX(ECONFIG, -1000, "invalid configuration")                                                    \
    XX(EPARSE, -1001, "parse error")                                                               \
    XX(EUNSUPPORTED, -1002, "not supported yet")                                                   \
    XX(EQUOTA, -1003, "spool quota exceeded")                                                      \
    XX(EHTTP, -1004, "HTTP error")                                                                 \
    XX(ECURL, -1005, "transfer error")                                                             \
    XX(ESQLITE, -1006, "database error")                                                           \
    XX(EAUTH, -1007, "authentication failed")                                                      \
    XX(ELIMIT, -1008, "limit exceeded")                                                            \
    XX(ENOTFOUND, -1009, "not found")                                                              \
    XX(ERETRY, -1010, "temporary failure, retry")                                                  \
    XX(EFATAL, -1011, "permanent failure")                                                         \
    XX(ESTATE, -1012, "invalid state")                                                             \
    XX(EEXITED, -1013, "process exited")                                                           \
    XX(ETHROTTLED, -1014, "throttled")                                                             \
    XX(EKEEPFREE, -1015, "not enough free disk space (Storage.KeepFree)")                     \
    XX(ETRUNCATED, -1016, "data ended early")

enum vg_errno {
#define VG__ERR_ENUM(name, val, msg) VG_##name = (val),
    VG_ERRNO_MAP(VG__ERR_ENUM)
#undef VG__ERR_ENUM
        VG__ERR_PAD = 0
};

/* Human text for a VG_E* code (or any -errno). Never NULL. */
const char *vg_strerror(int err);
/* Stable identifier, e.g. "VG_ENOMEM"; "VG_EUNKNOWN" for codes outside the map. */
const char *vg_err_name(int err);

#endif
