/* Helpers shared inside rules/ only: field-table shorthands, canonical serialization and the
 * FNV-1a hash behind rule fingerprints. */
#ifndef VG_RULES_INT_H
#define VG_RULES_INT_H

#include "config/tree.h"
#include "config/util.h"

#include <stddef.h>
#include <stdint.h>

#define VG__SEC 1000ull
#define VG__MIN (60 * VG__SEC)
#define VG__HOUR (60 * VG__MIN)
#define VG__DAY (24 * VG__HOUR)

/* `.name/.type/.offset` of one field of struct `st`; callers add .set_offset and the rest.
 * Every table entry spells .set_offset (VG__NOSET or VG__SET) because 0 is a valid offset. */
#define VG__FLD(nm, ty, st, m) .name = (nm), .type = (ty), .offset = offsetof(st, m)
#define VG__NOSET .set_offset = VG_NO_SET
#define VG__SET(st, m) .set_offset = offsetof(st, m)

#define VG__FNV_INIT 0xcbf29ce484222325ull
uint64_t vg__fnv1a(uint64_t h, const void *data, size_t len);

/* Canonical text of a node: keys lowercased and sorted, so key order and case do not change
 * a fingerprint. Returns 0 or VG_ENOMEM. */
int vg__node_serialize(struct vg_buf *b, const struct vg_node *n);
/* Canonical text of the values a field table wrote into `obj` (plus each "was set" flag). */
int vg__fields_serialize(struct vg_buf *b, const struct vg_field *f, size_t n, const void *obj);

/* Numeric settings whose only bound is "at least `min`" skip the field table's range (its
 * message would print huge upper bounds); this reports `base.key` below `min` instead.
 * Returns the number of errors added (0 or 1). */
size_t vg__check_min(struct vg_diags *d, const struct vg_node *settings, const struct vg_pos *pos,
                     const char *base, const char *key, double v, double min, const char *what);

/* Walks every scalar under `n` calling fn(ud, scalar, path); path is built from `base`. */
typedef int (*vg__scalar_fn)(void *ud, const struct vg_node *scalar, const char *path);
int vg__walk_scalars(const struct vg_node *n, const char *base, vg__scalar_fn fn, void *ud);

#endif
