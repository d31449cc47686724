#ifndef VG_VERSION_H
#define VG_VERSION_H
const char *vg_version(void);
#endif
