#include "config/tree_int.h"

#include "config/error.h"
#include "config/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------- arena ---------- */

struct arena_block {
    struct arena_block *next;
    size_t used, size;
    max_align_t data[];
};

struct file_name {
    struct file_name *next;
    char name[];
};

struct vg_tree {
    struct arena_block *blocks;
    struct file_name *files;
    struct vg_node *root;
};

void *vg__tree_alloc(struct vg_tree *t, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    struct arena_block *b = t->blocks;
    if (!b || b->size - b->used < n) {
        size_t size = n > 60000 ? n : 60000;
        b = malloc(sizeof(*b) + size);
        if (!b)
            return NULL;
        b->next = t->blocks;
        b->used = 0;
        b->size = size;
        t->blocks = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

const char *vg__tree_intern_file(struct vg_tree *t, const char *name)
{
    for (struct file_name *f = t->files; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f->name;
    size_t len = strlen(name);
    struct file_name *f = malloc(sizeof(*f) + len + 1);
    if (!f)
        return NULL;
    memcpy(f->name, name, len + 1);
    f->next = t->files;
    t->files = f;
    return f->name;
}

struct vg_tree *vg_tree_create(void)
{
    struct vg_tree *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->root = vg_tree_new_node(t, VG_NODE_MAP, NULL);
    if (!t->root) {
        vg_tree_destroy(t);
        return NULL;
    }
    return t;
}

void vg_tree_destroy(struct vg_tree *t)
{
    if (!t)
        return;
    while (t->blocks) {
        struct arena_block *n = t->blocks->next;
        free(t->blocks);
        t->blocks = n;
    }
    while (t->files) {
        struct file_name *n = t->files->next;
        free(t->files);
        t->files = n;
    }
    free(t);
}

struct vg_node *vg_tree_root(const struct vg_tree *t)
{
    return t->root;
}

struct vg_node *vg_tree_new_node(struct vg_tree *t, enum vg_node_kind kind,
                                 const struct vg_pos *pos)
{
    struct vg_node *n = vg__tree_alloc(t, sizeof(*n));
    if (!n)
        return NULL;
    n->kind = kind;
    if (pos)
        n->pos = *pos;
    return n;
}

char *vg_tree_strdup(struct vg_tree *t, const char *s)
{
    size_t len = strlen(s);
    char *p = vg__tree_alloc(t, len + 1);
    if (p)
        memcpy(p, s, len + 1);
    return p;
}

int vg__node_push_item(struct vg_tree *t, struct vg_node *seq, struct vg_node *item)
{
    if (seq->n == seq->cap) {
        size_t ncap = seq->cap ? seq->cap * 2 : 4;
        struct vg_node **items = vg__tree_alloc(t, ncap * sizeof(*items));
        if (!items)
            return VG_ENOMEM;
        if (seq->n)
            memcpy(items, seq->items, seq->n * sizeof(*items));
        seq->items = items;
        seq->cap = ncap;
    }
    seq->items[seq->n++] = item;
    return 0;
}

int vg__node_push_pair(struct vg_tree *t, struct vg_node *map, char *key, const struct vg_pos *kpos,
                       struct vg_node *value)
{
    if (map->n == map->cap) {
        size_t ncap = map->cap ? map->cap * 2 : 4;
        struct vg_pair *pairs = vg__tree_alloc(t, ncap * sizeof(*pairs));
        if (!pairs)
            return VG_ENOMEM;
        if (map->n)
            memcpy(pairs, map->pairs, map->n * sizeof(*pairs));
        map->pairs = pairs;
        map->cap = ncap;
    }
    struct vg_pair *p = &map->pairs[map->n++];
    p->key = key;
    p->key_pos = *kpos;
    p->value = value;
    return 0;
}

bool vg__builder_count(struct vg__builder *b, const struct vg_pos *pos)
{
    if (++b->nodes <= VG__MAX_NODES_PER_FILE)
        return true;
    if (!b->failed)
        vg_diag_err(b->diags, pos, NULL,
                    "document expands to more than %u nodes (alias bomb or oversized file)",
                    VG__MAX_NODES_PER_FILE);
    b->failed = true;
    return false;
}

int vg__tree_merge(struct vg_tree *t, struct vg_node *dst, struct vg_node *src)
{
    for (size_t i = 0; i < src->n; i++) {
        struct vg_pair *sp = &src->pairs[i];
        struct vg_pair *dp = NULL;
        for (size_t j = 0; j < dst->n; j++)
            if (strcasecmp(dst->pairs[j].key, sp->key) == 0)
                dp = &dst->pairs[j];
        if (dp && dp->value->kind == VG_NODE_MAP && sp->value->kind == VG_NODE_MAP) {
            int rc = vg__tree_merge(t, dp->value, sp->value);
            if (rc)
                return rc;
        } else if (dp) {
            dp->value = sp->value;
            dp->key_pos = sp->key_pos;
        } else {
            int rc = vg__node_push_pair(t, dst, sp->key, &sp->key_pos, sp->value);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ---------- loading ---------- */

static bool has_suffix(const char *s, const char *suf)
{
    size_t ls = strlen(s), lf = strlen(suf);
    return ls >= lf && strcasecmp(s + ls - lf, suf) == 0;
}

void *vg_tree_alloc(struct vg_tree *t, size_t n)
{
    return vg__tree_alloc(t, n);
}

static int parse_buffer(struct vg_tree *t, const char *name, const char *data, size_t len,
                        bool json, struct vg_diags *diags, struct vg_node **out)
{
    *out = NULL;
    struct vg__builder b = {.tree = t, .diags = diags};
    b.file = vg__tree_intern_file(t, name);
    if (!b.file)
        return VG_ENOMEM;
    struct vg_pos start = {b.file, 1, 1};
    if (len > VG__MAX_FILE_BYTES) {
        vg_diag_err(diags, &start, NULL, "file is too large (%zu bytes; the limit is %u)", len,
                    VG__MAX_FILE_BYTES);
        return VG_EPARSE;
    }
    struct vg_node *doc = NULL;
    size_t errors_before = diags->errors;
    int rc = json ? vg__parse_json(&b, data, len, &doc) : vg__parse_yaml(&b, data, len, &doc);
    if (rc == VG_ENOMEM)
        return rc;
    if (rc || diags->errors > errors_before)
        return VG_EPARSE;
    if (!doc || doc->kind == VG_NODE_NULL) {
        vg_diag_warn(diags, &start, NULL, "file is empty; nothing to load");
        return 0;
    }
    if (doc->kind != VG_NODE_MAP) {
        vg_diag_err(diags, &doc->pos, NULL, "the top level must be a mapping of sections, got a %s",
                    vg_node_kind_name(doc->kind));
        return VG_EPARSE;
    }
    *out = doc;
    return 0;
}

int vg_tree_merge_doc(struct vg_tree *t, struct vg_node *doc)
{
    return doc ? vg__tree_merge(t, t->root, doc) : 0;
}

int vg_tree_load_buffer(struct vg_tree *t, const char *name, const char *data, size_t len,
                        bool json, struct vg_diags *diags)
{
    struct vg_node *doc;
    int rc = parse_buffer(t, name, data, len, json, diags, &doc);
    return rc ? rc : vg_tree_merge_doc(t, doc);
}

int vg_tree_parse_file(struct vg_tree *t, const char *path, struct vg_diags *diags,
                       struct vg_node **doc)
{
    *doc = NULL;
    struct vg_pos where = {vg__tree_intern_file(t, path), 0, 0};
    if (!where.file)
        return VG_ENOMEM;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        vg_diag_err(diags, &where, NULL, "cannot open: %s", strerror(errno));
        return VG_EPARSE;
    }
    struct stat st;
    int rc = 0;
    char *data = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        vg_diag_err(diags, &where, NULL, "not a regular file");
        rc = VG_EPARSE;
        goto out;
    }
    if ((uint64_t)st.st_size > VG__MAX_FILE_BYTES) {
        vg_diag_err(diags, &where, NULL, "file is too large (%lld bytes; the limit is %u)",
                    (long long)st.st_size, VG__MAX_FILE_BYTES);
        rc = VG_EPARSE;
        goto out;
    }
    data = malloc((size_t)st.st_size + 1);
    if (!data) {
        rc = VG_ENOMEM;
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            vg_diag_err(diags, &where, NULL, "read failed: %s", strerror(errno));
            rc = VG_EPARSE;
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    data[got] = '\0';
    rc = parse_buffer(t, path, data, got, has_suffix(path, ".json"), diags, doc);
out:
    free(data);
    close(fd);
    return rc;
}

/* ---------- queries ---------- */

const struct vg_pair *vg_node_get_pair(const struct vg_node *map, const char *key)
{
    if (!map || map->kind != VG_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcasecmp(map->pairs[i].key, key) == 0)
            return &map->pairs[i];
    return NULL;
}

struct vg_node *vg_node_get(const struct vg_node *map, const char *key)
{
    const struct vg_pair *p = vg_node_get_pair(map, key);
    return p ? p->value : NULL;
}

const char *vg_node_str(const struct vg_node *n)
{
    return n && n->kind == VG_NODE_SCALAR ? n->str : NULL;
}

bool vg_node_is_null(const struct vg_node *n)
{
    return !n || n->kind == VG_NODE_NULL;
}

const char *vg_node_kind_name(enum vg_node_kind k)
{
    switch (k) {
    case VG_NODE_NULL:
        return "null";
    case VG_NODE_SCALAR:
        return "scalar";
    case VG_NODE_MAP:
        return "mapping";
    case VG_NODE_SEQ:
        return "list";
    }
    return "?";
}

char *vg_path_join(const char *base, const char *key)
{
    if (!base || !*base)
        return vg_strdup(key);
    return vg_asprintf("%s.%s", base, key);
}

char *vg_path_index(const char *base, size_t index)
{
    return vg_asprintf("%s[%zu]", base ? base : "", index);
}

/* ---------- diagnostics ---------- */

void vg_diags_init(struct vg_diags *d)
{
    memset(d, 0, sizeof(*d));
}

void vg_diags_free(struct vg_diags *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].path);
        free(d->v[i].msg);
    }
    free(d->v);
    vg_diags_init(d);
}

void vg_diag_add(struct vg_diags *d, enum vg_severity sev, const struct vg_pos *pos,
                 const char *path, const char *fmt, ...)
{
    /* A flood of errors (e.g. 10,000 broken files) is capped; the count still grows. */
    if (sev == VG_SEV_ERROR)
        d->errors++;
    else
        d->warnings++;
    if (d->n >= 10000)
        return;
    if (d->n == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 16;
        struct vg_diag *v = realloc(d->v, ncap * sizeof(*v));
        if (!v)
            return;
        d->v = v;
        d->cap = ncap;
    }
    struct vg_diag *g = &d->v[d->n];
    memset(g, 0, sizeof(*g));
    g->severity = sev;
    if (pos && pos->file) {
        g->file = vg_strdup(pos->file);
        g->line = pos->line;
        g->col = pos->col;
    }
    if (path && *path)
        g->path = vg_strdup(path);
    struct vg_buf b;
    vg_buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    vg_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    g->msg = vg_buf_steal(&b);
    if (!g->msg) {
        free(g->file);
        free(g->path);
        return;
    }
    d->n++;
}

char *vg_diag_format(const struct vg_diag *g)
{
    struct vg_buf b;
    vg_buf_init(&b);
    if (g->file) {
        vg_buf_puts(&b, g->file);
        if (g->line > 0)
            vg_buf_printf(&b, ":%d:%d", g->line, g->col);
        vg_buf_puts(&b, ": ");
    }
    vg_buf_puts(&b, g->severity == VG_SEV_ERROR ? "error: " : "warning: ");
    if (g->path)
        vg_buf_printf(&b, "%s: ", g->path);
    vg_buf_puts(&b, g->msg);
    return vg_buf_steal(&b);
}

static int diag_cmp(const void *a, const void *b)
{
    const struct vg_diag *x = a, *y = b;
    int c = strcmp(x->file ? x->file : "", y->file ? y->file : "");
    if (c)
        return c;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x < y ? -1 : (x > y);
}

void vg_diags_sort(struct vg_diags *d)
{
    /* qsort is not stable; tie-break on address keeps insertion order for equal positions. */
    if (d->n > 1)
        qsort(d->v, d->n, sizeof(*d->v), diag_cmp);
}

/* ---------- scalar conversions ---------- */

static const char *describe(const struct vg_node *n, char *buf, size_t len)
{
    if (!n || n->kind == VG_NODE_NULL)
        return "null";
    if (n->kind != VG_NODE_SCALAR)
        return n->kind == VG_NODE_MAP ? "a mapping" : "a list";
    size_t max = len - 3;
    if (n->len <= max) {
        snprintf(buf, len, "\"%s\"", n->str);
    } else {
        snprintf(buf, len, "\"%.*s...\"", (int)(max - 3), n->str);
    }
    /* Replace control bytes so diagnostics stay printable. */
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = '?';
    return buf;
}

int vg_node_to_bool(const struct vg_node *n, const char *path, struct vg_diags *d, bool *out)
{
    const char *s = vg_node_str(n);
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    if (s) {
        for (size_t i = 0; i < VG_ARRAY_SIZE(yes); i++) {
            if (strcasecmp(s, yes[i]) == 0) {
                *out = true;
                return 0;
            }
            if (strcasecmp(s, no[i]) == 0) {
                *out = false;
                return 0;
            }
        }
    }
    char buf[72];
    vg_diag_err(d, n ? &n->pos : NULL, path, "expected true or false, got %s",
                describe(n, buf, sizeof(buf)));
    return VG_ECONFIG;
}

static void range_text(char *buf, size_t n, double min, double max, bool integer)
{
    if (min == 0 && max == 0)
        snprintf(buf, n, "%s", integer ? "an integer" : "a number");
    else
        snprintf(buf, n, "%s %.15g-%.15g", integer ? "an integer" : "a number", min, max);
}

int vg_node_to_double(const struct vg_node *n, const char *path, double min, double max,
                      struct vg_diags *d, double *out)
{
    const char *s = vg_node_str(n);
    char want[64], buf[72];
    range_text(want, sizeof(want), min, max, false);
    if (s && *s) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        while (*end == ' ')
            end++;
        if (end != s && *end == '\0' && errno == 0 && isfinite(v) && !isspace((unsigned char)*s) &&
            strncasecmp(s, "0x", 2) != 0) {
            if ((min != 0 || max != 0) && (v < min || v > max)) {
                vg_diag_err(d, &n->pos, path, "expected %s, got %s (out of range)", want,
                            describe(n, buf, sizeof(buf)));
                return VG_ECONFIG;
            }
            *out = v;
            return 0;
        }
    }
    vg_diag_err(d, n ? &n->pos : NULL, path, "expected %s, got %s", want,
                describe(n, buf, sizeof(buf)));
    return VG_ECONFIG;
}

int vg_node_to_int(const struct vg_node *n, const char *path, int64_t min, int64_t max,
                   struct vg_diags *d, int64_t *out)
{
    const char *s = vg_node_str(n);
    char want[64], buf[72];
    range_text(want, sizeof(want), (double)min, (double)max, true);
    if (s && *s && (isdigit((unsigned char)*s) || *s == '-' || *s == '+')) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (*end == '\0' && errno == 0) {
            if ((min != 0 || max != 0) && (v < min || v > max)) {
                vg_diag_err(d, &n->pos, path, "expected %s, got %s (out of range)", want,
                            describe(n, buf, sizeof(buf)));
                return VG_ECONFIG;
            }
            *out = v;
            return 0;
        }
        if (errno == ERANGE) {
            vg_diag_err(d, &n->pos, path, "expected %s, got %s (out of range)", want,
                        describe(n, buf, sizeof(buf)));
            return VG_ECONFIG;
        }
    }
    vg_diag_err(d, n ? &n->pos : NULL, path, "expected %s, got %s", want,
                describe(n, buf, sizeof(buf)));
    return VG_ECONFIG;
}

int vg_node_to_duration(const struct vg_node *n, const char *path, struct vg_diags *d,
                        uint64_t *out_ms)
{
    const char *s = vg_node_str(n);
    char buf[72];
    int rc = s ? vg_parse_duration_ms(s, out_ms) : VG_EINVAL;
    if (rc == 0)
        return 0;
    vg_diag_err(d, n ? &n->pos : NULL, path,
                "expected a duration such as \"00:01:30\", \"1.00:00:00\", \"30s\", \"5m\", "
                "\"1h\" or \"1d\", got %s%s",
                describe(n, buf, sizeof(buf)), rc == VG_ERANGE ? " (out of range)" : "");
    return VG_ECONFIG;
}

int vg_node_to_size(const struct vg_node *n, const char *path, struct vg_diags *d,
                    uint64_t *out_bytes)
{
    const char *s = vg_node_str(n);
    char buf[72];
    int rc = s ? vg_parse_size(s, out_bytes) : VG_EINVAL;
    if (rc == 0)
        return 0;
    vg_diag_err(d, n ? &n->pos : NULL, path,
                "expected a size such as \"100MB\", \"1GiB\" or a number of bytes, got %s%s",
                describe(n, buf, sizeof(buf)), rc == VG_ERANGE ? " (out of range)" : "");
    return VG_ECONFIG;
}

const char *vg_did_you_mean(const char *word, const char *const *candidates)
{
    const char *best = NULL;
    unsigned best_d = 0;
    size_t wl = strlen(word);
    unsigned cap = wl < 4 ? 1 : wl < 8 ? 2 : 3;
    for (size_t i = 0; candidates[i]; i++) {
        size_t cl = strlen(candidates[i]);
        /* "AzureBlob" for "AzureBlobStorage": a long shared prefix is a strong hint */
        if (wl >= 5 && cl > wl && strncasecmp(word, candidates[i], wl) == 0)
            return candidates[i];
        unsigned dist = vg_edit_distance(word, candidates[i], cap);
        if (dist <= cap && (!best || dist < best_d)) {
            best = candidates[i];
            best_d = dist;
        }
    }
    return best;
}

/* ---------- field tables ---------- */

static int apply_field(struct vg_tree *t, const struct vg_field *f, const struct vg_node *v,
                       const char *path, void *out, struct vg_diags *d)
{
    char *dst = (char *)out + f->offset;
    int rc = 0;
    char buf[72];
    switch (f->type) {
    case VG_FIELD_BOOL:
        rc = vg_node_to_bool(v, path, d, (bool *)dst);
        break;
    case VG_FIELD_INT: {
        int64_t x;
        rc = vg_node_to_int(v, path, (int64_t)f->min, (int64_t)f->max, d, &x);
        if (!rc)
            memcpy(dst, &x, sizeof(x));
        break;
    }
    case VG_FIELD_DOUBLE:
        rc = vg_node_to_double(v, path, f->min, f->max, d, (double *)dst);
        break;
    case VG_FIELD_DURATION:
    case VG_FIELD_SIZE: {
        uint64_t x;
        rc = f->type == VG_FIELD_DURATION ? vg_node_to_duration(v, path, d, &x)
                                          : vg_node_to_size(v, path, d, &x);
        if (rc)
            break;
        if ((f->min != 0 || f->max != 0) && ((double)x < f->min || (double)x > f->max)) {
            if (f->type == VG_FIELD_DURATION) {
                char lo[32], hi[32];
                vg_format_timespan((uint64_t)f->min, lo, sizeof(lo));
                vg_format_timespan((uint64_t)f->max, hi, sizeof(hi));
                vg_diag_err(d, &v->pos, path, "expected a duration between %s and %s, got %s", lo,
                            hi, describe(v, buf, sizeof(buf)));
            } else {
                vg_diag_err(d, &v->pos, path, "expected a size between %.0f and %.0f bytes, got %s",
                            f->min, f->max, describe(v, buf, sizeof(buf)));
            }
            rc = VG_ECONFIG;
            break;
        }
        memcpy(dst, &x, sizeof(x));
        break;
    }
    case VG_FIELD_STRING:
        if (v->kind != VG_NODE_SCALAR) {
            vg_diag_err(d, &v->pos, path, "expected a string, got %s",
                        describe(v, buf, sizeof(buf)));
            rc = VG_ECONFIG;
            break;
        }
        *(const char **)dst = v->str;
        break;
    case VG_FIELD_ENUM: {
        const char *s = vg_node_str(v);
        if (s) {
            for (int i = 0; f->enum_values[i]; i++) {
                if (strcasecmp(s, f->enum_values[i]) == 0) {
                    *(int *)dst = i;
                    return 0;
                }
            }
        }
        struct vg_buf allowed;
        vg_buf_init(&allowed);
        for (int i = 0; f->enum_values[i]; i++)
            vg_buf_printf(&allowed, "%s%s", i ? ", " : "", f->enum_values[i]);
        const char *hint = s ? vg_did_you_mean(s, f->enum_values) : NULL;
        if (hint)
            vg_diag_err(d, &v->pos, path, "expected one of %s, got %s; did you mean \"%s\"?",
                        allowed.data, describe(v, buf, sizeof(buf)), hint);
        else
            vg_diag_err(d, &v->pos, path, "expected one of %s, got %s", allowed.data,
                        describe(v, buf, sizeof(buf)));
        vg_buf_free(&allowed);
        rc = VG_ECONFIG;
        break;
    }
    case VG_FIELD_STRLIST: {
        struct vg_strlist *l = (struct vg_strlist *)dst;
        if (v->kind == VG_NODE_SCALAR) {
            /* A single string is accepted as a one-element list (ConfigMap-friendly). */
            l->v = vg__tree_alloc(t, sizeof(*l->v));
            if (!l->v)
                return VG_ENOMEM;
            l->v[0] = v->str;
            l->n = 1;
            break;
        }
        if (v->kind != VG_NODE_SEQ) {
            vg_diag_err(d, &v->pos, path, "expected a list of strings, got %s",
                        describe(v, buf, sizeof(buf)));
            rc = VG_ECONFIG;
            break;
        }
        l->v = v->n ? vg__tree_alloc(t, v->n * sizeof(*l->v)) : NULL;
        if (v->n && !l->v)
            return VG_ENOMEM;
        l->n = 0;
        for (size_t i = 0; i < v->n; i++) {
            if (v->items[i]->kind != VG_NODE_SCALAR) {
                char *ip = vg_path_index(path, i);
                vg_diag_err(d, &v->items[i]->pos, ip, "expected a string, got %s",
                            describe(v->items[i], buf, sizeof(buf)));
                free(ip);
                rc = VG_ECONFIG;
                continue;
            }
            l->v[l->n++] = v->items[i]->str;
        }
        break;
    }
    case VG_FIELD_NODE:
        *(const struct vg_node **)dst = v;
        break;
    }
    return rc;
}

size_t vg_fields_apply(struct vg_tree *t, const struct vg_field *fields, size_t nfields,
                       const struct vg_node *map, const struct vg_node *defaults, const char *path,
                       void *out, struct vg_diags *diags)
{
    size_t before = diags->errors;
    char buf[72];
    if (map && map->kind != VG_NODE_MAP && map->kind != VG_NODE_NULL) {
        vg_diag_err(diags, &map->pos, path, "expected a mapping of settings, got %s",
                    describe(map, buf, sizeof(buf)));
        return diags->errors - before;
    }
    if (map && map->kind == VG_NODE_MAP) {
        const char *names[65];
        size_t nn = 0;
        for (size_t i = 0; i < nfields && nn < 64; i++)
            names[nn++] = fields[i].name;
        names[nn] = NULL;
        for (size_t i = 0; i < map->n; i++) {
            bool known = false;
            for (size_t j = 0; j < nfields; j++)
                known = known || strcasecmp(map->pairs[i].key, fields[j].name) == 0;
            if (known)
                continue;
            char *kp = vg_path_join(path, map->pairs[i].key);
            const char *hint = vg_did_you_mean(map->pairs[i].key, names);
            if (hint)
                vg_diag_err(diags, &map->pairs[i].key_pos, kp,
                            "unknown setting; did you mean \"%s\"?", hint);
            else
                vg_diag_err(diags, &map->pairs[i].key_pos, kp, "unknown setting");
            free(kp);
        }
    }
    for (size_t j = 0; j < nfields; j++) {
        const struct vg_field *f = &fields[j];
        const struct vg_node *v = vg_node_get(map, f->name);
        bool from_defaults = false;
        if (vg_node_is_null(v) && defaults) {
            const struct vg_node *dv = vg_node_get(defaults, f->name);
            if (!vg_node_is_null(dv)) {
                v = dv;
                from_defaults = true;
            }
        }
        if (vg_node_is_null(v)) {
            if (f->required) {
                char *kp = vg_path_join(path, f->name);
                vg_diag_err(diags, map ? &map->pos : NULL, kp, "required setting is missing%s%s",
                            f->help ? "; expected " : "", f->help ? f->help : "");
                free(kp);
            }
            continue;
        }
        char *kp = vg_path_join(path, f->name);
        (void)from_defaults;
        int rc = apply_field(t, f, v, kp, out, diags);
        free(kp);
        if (rc == 0 && f->set_offset != VG_NO_SET)
            *(bool *)((char *)out + f->set_offset) = true;
    }
    return diags->errors - before;
}
