/* Canonical serialization of compiled settings, hashed into rule fingerprints so the engine can
 * tell an unchanged rule across reloads without keeping the old tree around. */
#include "rules/rules_int.h"
#include "config/error.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

uint64_t vg__fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Length-prefixed so "ab"+"c" and "a"+"bc" never collide. */
static int put_str(struct vg_buf *b, const char *s, bool lower)
{
    if (!s)
        return vg_buf_puts(b, "~");
    size_t n = strlen(s);
    int r = vg_buf_printf(b, "%zu:", n);
    for (size_t i = 0; r == 0 && i < n; i++) {
        char c = lower ? (char)tolower((unsigned char)s[i]) : s[i];
        r = vg_buf_append(b, &c, 1);
    }
    return r;
}

static int cmp_pair_ci(const void *a, const void *b)
{
    const struct vg_pair *const *x = a, *const *y = b;
    return strcasecmp((*x)->key, (*y)->key);
}

int vg__node_serialize(struct vg_buf *b, const struct vg_node *n)
{
    int r = 0;
    if (!n || n->kind == VG_NODE_NULL)
        return vg_buf_puts(b, "n");
    switch (n->kind) {
    case VG_NODE_SCALAR:
        if ((r = vg_buf_puts(b, "s")) == 0)
            r = put_str(b, n->str, false);
        return r;
    case VG_NODE_SEQ:
        r = vg_buf_printf(b, "[%zu", n->n);
        for (size_t i = 0; r == 0 && i < n->n; i++)
            r = vg__node_serialize(b, n->items[i]);
        return r ? r : vg_buf_puts(b, "]");
    case VG_NODE_MAP: {
        const struct vg_pair **v = n->n ? malloc(n->n * sizeof(*v)) : NULL;
        if (n->n && !v)
            return VG_ENOMEM;
        for (size_t i = 0; i < n->n; i++)
            v[i] = &n->pairs[i];
        if (n->n)
            qsort(v, n->n, sizeof(*v), cmp_pair_ci);
        r = vg_buf_printf(b, "{%zu", n->n);
        for (size_t i = 0; r == 0 && i < n->n; i++) {
            if ((r = put_str(b, v[i]->key, true)) == 0)
                r = vg__node_serialize(b, v[i]->value);
        }
        free(v);
        return r ? r : vg_buf_puts(b, "}");
    }
    default:
        return vg_buf_puts(b, "?");
    }
}

int vg__fields_serialize(struct vg_buf *b, const struct vg_field *f, size_t n, const void *obj)
{
    const char *base = obj;
    int r = 0;
    for (size_t i = 0; r == 0 && i < n; i++) {
        const void *p = base + f[i].offset;
        if ((r = put_str(b, f[i].name, true)) != 0)
            break;
        if (f[i].set_offset != VG_NO_SET)
            r = vg_buf_puts(b, *(const bool *)(base + f[i].set_offset) ? "+" : "-");
        if (r)
            break;
        switch (f[i].type) {
        case VG_FIELD_BOOL:
            r = vg_buf_puts(b, *(const bool *)p ? "T" : "F");
            break;
        case VG_FIELD_INT:
            r = vg_buf_printf(b, "i%" PRId64, *(const int64_t *)p);
            break;
        case VG_FIELD_DOUBLE:
            r = vg_buf_printf(b, "d%.17g", *(const double *)p);
            break;
        case VG_FIELD_DURATION:
        case VG_FIELD_SIZE:
            r = vg_buf_printf(b, "u%" PRIu64, *(const uint64_t *)p);
            break;
        case VG_FIELD_STRING:
            r = put_str(b, *(const char *const *)p, false);
            break;
        case VG_FIELD_ENUM:
            r = vg_buf_printf(b, "e%d", *(const int *)p);
            break;
        case VG_FIELD_STRLIST: {
            const struct vg_strlist *l = p;
            r = vg_buf_printf(b, "l%zu", l->n);
            for (size_t j = 0; r == 0 && j < l->n; j++)
                r = put_str(b, l->v[j], false);
            break;
        }
        case VG_FIELD_NODE:
            r = vg__node_serialize(b, *(const struct vg_node *const *)p);
            break;
        }
        if (r == 0)
            r = vg_buf_puts(b, ";");
    }
    return r;
}

size_t vg__check_min(struct vg_diags *d, const struct vg_node *settings, const struct vg_pos *pos,
                     const char *base, const char *key, double v, double min, const char *what)
{
    const struct vg_node *n = vg_node_get(settings, key);
    char *path;
    if (v >= min)
        return 0;
    path = vg_path_join(base, key);
    vg_diag_err(d, n ? &n->pos : pos, path ? path : base, "expected %s, got \"%s\" (out of range)",
                what, vg_node_str(n) ? vg_node_str(n) : "");
    free(path);
    return 1;
}

int vg__walk_scalars(const struct vg_node *n, const char *base, vg__scalar_fn fn, void *ud)
{
    int r = 0;
    if (!n)
        return 0;
    if (n->kind == VG_NODE_SCALAR)
        return fn(ud, n, base);
    for (size_t i = 0; r == 0 && i < n->n; i++) {
        char *p =
            n->kind == VG_NODE_MAP ? vg_path_join(base, n->pairs[i].key) : vg_path_index(base, i);
        if (!p)
            return VG_ENOMEM;
        r = vg__walk_scalars(n->kind == VG_NODE_MAP ? n->pairs[i].value : n->items[i], p, fn, ud);
        free(p);
    }
    return r;
}
