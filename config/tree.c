#include "config/tree_int.h"

#include "config/error.h"
#include "config/redact.h"
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

/* "0", "1", ... "2147483647": a .NET configuration array index. */
static bool index_key(const char *k, unsigned long *out)
{
    if (!*k || strspn(k, "0123456789") != strlen(k) || (k[0] == '0' && k[1]) || strlen(k) > 10)
        return false;
    unsigned long v = strtoul(k, NULL, 10);
    if (v > 2147483647ul)
        return false;
    if (out)
        *out = v;
    return true;
}

static bool index_map(const struct vg_node *n)
{
    if (!n || n->kind != VG_NODE_MAP || n->n == 0)
        return false;
    for (size_t i = 0; i < n->n; i++)
        if (!index_key(n->pairs[i].key, NULL))
            return false;
    return true;
}

/* A list as an index-keyed map ("0": item0, ...), so it merges with one written that way. */
static struct vg_node *seq_as_map(struct vg_tree *t, const struct vg_node *seq)
{
    struct vg_node *m = vg_tree_new_node(t, VG_NODE_MAP, &seq->pos);
    for (size_t i = 0; m && i < seq->n; i++) {
        char key[24];
        snprintf(key, sizeof(key), "%zu", i);
        char *k = vg_tree_strdup(t, key);
        if (!k || vg__node_push_pair(t, m, k, &seq->items[i]->pos, seq->items[i]))
            return NULL;
    }
    return m;
}

static int merge_value(struct vg_tree *t, struct vg_node **slot, struct vg_node *src);

int vg__tree_merge(struct vg_tree *t, struct vg_node *dst, struct vg_node *src)
{
    for (size_t i = 0; i < src->n; i++) {
        struct vg_pair *sp = &src->pairs[i];
        struct vg_pair *dp = NULL;
        for (size_t j = 0; j < dst->n && !dp; j++)
            if (strcasecmp(dst->pairs[j].key, sp->key) == 0)
                dp = &dst->pairs[j];
        if (!dp) {
            int rc = vg__node_push_pair(t, dst, sp->key, &sp->key_pos, sp->value);
            if (rc)
                return rc;
            continue;
        }
        struct vg_node *before = dp->value;
        int rc = merge_value(t, &dp->value, sp->value);
        if (rc)
            return rc;
        if (dp->value != before)
            dp->key_pos = sp->key_pos; /* the key now comes from where its value does */
    }
    return 0;
}

/* Merges src into *slot; *slot may be replaced. Nodes of src are shared, never copied: the
 * document was parsed into the same arena and is not used on its own after the merge. */
static int merge_value(struct vg_tree *t, struct vg_node **slot, struct vg_node *src)
{
    struct vg_node *dst = *slot;
    bool dst_list = dst->kind == VG_NODE_SEQ || index_map(dst);
    bool src_list = src->kind == VG_NODE_SEQ || index_map(src);
    bool src_empty =
        src->kind == VG_NODE_NULL || ((src->kind == VG_NODE_MAP || src->kind == VG_NODE_SEQ) &&
                                      src->n == 0 && !src->section_value);
    if (src_empty && (dst->kind == VG_NODE_MAP || dst->kind == VG_NODE_SEQ))
        return 0; /* .NET: null, [] and {} leave the keys below it alone */
    if (dst->kind == VG_NODE_SEQ && src->kind == VG_NODE_SEQ) {
        for (size_t i = 0; i < src->n; i++) {
            int rc = i < dst->n ? merge_value(t, &dst->items[i], src->items[i])
                                : vg__node_push_item(t, dst, src->items[i]);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (dst_list && src_list) {
        /* one of them is an index-keyed map: merge as maps, normalize makes a list again */
        if (dst->kind == VG_NODE_SEQ && !(dst = *slot = seq_as_map(t, dst)))
            return VG_ENOMEM;
        if (src->kind == VG_NODE_SEQ && !(src = seq_as_map(t, src)))
            return VG_ENOMEM;
        return vg__tree_merge(t, dst, src);
    }
    if (dst->kind == VG_NODE_MAP && src->kind == VG_NODE_MAP) {
        if (src->section_value)
            dst->section_value = src->section_value;
        return vg__tree_merge(t, dst, src);
    }
    /* A value and settings for the same key can coexist in flattened sources (.NET keeps both). */
    if (dst->kind == VG_NODE_MAP && src->kind == VG_NODE_SCALAR) {
        dst->section_value = src;
        return 0;
    }
    if (dst->kind == VG_NODE_SCALAR && src->kind == VG_NODE_MAP) {
        if (!src->section_value)
            src->section_value = dst;
        *slot = src;
        return 0;
    }
    *slot = src;
    return 0;
}

int vg_tree_merge_doc(struct vg_tree *t, struct vg_node *doc)
{
    return doc ? vg__tree_merge(t, t->root, doc) : 0;
}

/* ---------- normalization ---------- */

/* Maps whose keys the user names: an all-digit key there is a name, not a list index. Patterns
 * are key paths, '*' standing for any one key. */
static const char *const named_maps[] = {
    "CollectionRules",         "Templates.*",      "Egress.*",           "Egress.*.*.Metadata",
    "GlobalCounter.Providers", "Logging.LogLevel", "Logging.*.LogLevel", NULL,
};

static bool path_matches(const char *const *segs, size_t n, const char *pattern)
{
    size_t i = 0;
    const char *p = pattern;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (i >= n)
            return false;
        if (!(len == 1 && *p == '*') && (strlen(segs[i]) != len || strncasecmp(segs[i], p, len)))
            return false;
        i++;
        p += len + (dot != NULL);
    }
    return i == n;
}

static bool named_map(const char *const *segs, size_t n)
{
    for (size_t i = 0; named_maps[i]; i++)
        if (path_matches(segs, n, named_maps[i]))
            return true;
    return false;
}

struct norm {
    struct vg_tree *t;
    struct vg_diags *d;
    const char *segs[VG__MAX_DEPTH + 2];
};

static int pair_index_cmp(const void *a, const void *b)
{
    unsigned long x = 0, y = 0;
    index_key(((const struct vg_pair *)a)->key, &x);
    index_key(((const struct vg_pair *)b)->key, &y);
    return x < y ? -1 : x > y;
}

static char *seg_path(const struct norm *nm, size_t depth)
{
    struct vg_buf b;
    vg_buf_init(&b);
    for (size_t i = 0; i < depth; i++)
        vg_buf_printf(&b, "%s%s", i ? "." : "", nm->segs[i]);
    return vg_buf_steal(&b);
}

static int normalize(struct norm *nm, struct vg_node **slot, size_t depth)
{
    struct vg_node *n = *slot;
    if (depth > VG__MAX_DEPTH)
        return 0;
    if (n->kind == VG_NODE_MAP && n->section_value) {
        if (depth == 1 && strcasecmp(nm->segs[0], "DiagnosticPort") == 0) {
            /* its short form: the value wins over the settings, as in dotnet-monitor */
        } else {
            char *p = seg_path(nm, depth);
            const struct vg_node *v = n->section_value;
            vg_diag_warn(nm->d, &v->pos, p,
                         "both a value (\"%s\") and settings are given for this key; the value "
                         "is ignored",
                         v->str ? v->str : "");
            free(p);
            n->section_value = NULL;
        }
    }
    if (n->kind == VG_NODE_MAP && index_map(n) && !named_map(nm->segs, depth)) {
        struct vg_node *seq = vg_tree_new_node(nm->t, VG_NODE_SEQ, &n->pos);
        if (!seq)
            return VG_ENOMEM;
        qsort(n->pairs, n->n, sizeof(*n->pairs), pair_index_cmp);
        for (size_t i = 0; i < n->n; i++)
            if (vg__node_push_item(nm->t, seq, n->pairs[i].value))
                return VG_ENOMEM;
        *slot = n = seq;
    }
    if (n->kind == VG_NODE_MAP) {
        for (size_t i = 0; i < n->n; i++) {
            nm->segs[depth] = n->pairs[i].key;
            int rc = normalize(nm, &n->pairs[i].value, depth + 1);
            if (rc)
                return rc;
        }
    } else if (n->kind == VG_NODE_SEQ) {
        for (size_t i = 0; i < n->n; i++) {
            char idx[24];
            snprintf(idx, sizeof(idx), "%zu", i);
            nm->segs[depth] = idx;
            int rc = normalize(nm, &n->items[i], depth + 1);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int vg_tree_normalize(struct vg_tree *t, struct vg_diags *diags)
{
    struct norm nm = {.t = t, .d = diags};
    return normalize(&nm, &t->root, 0);
}

/* ---------- loading ---------- */

void *vg_tree_alloc(struct vg_tree *t, size_t n)
{
    return vg__tree_alloc(t, n);
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
        free(d->v[i].rule);
    }
    free(d->v);
    vg_diags_init(d);
}

void vg_diag_add(struct vg_diags *d, enum vg_severity sev, const struct vg_pos *pos,
                 const char *path, const char *fmt, ...)
{
    /* A flood of errors (e.g. 10,000 broken files) is capped; the count still grows. */
    if (sev == VG_SEV_ERROR) {
        d->errors++;
        d->rule_errors += d->rule != NULL;
    } else {
        d->warnings++;
    }
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
    if (d->rule)
        g->rule = vg_strdup(d->rule);
    struct vg_buf b;
    vg_buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    vg_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    g->msg = vg_buf_steal(&b);
    vg_redact(g->msg); /* a value refused may be a resolved secret */
    if (!g->msg) {
        free(g->file);
        free(g->path);
        free(g->rule);
        return;
    }
    d->n++;
}

void vg_diags_set_rule(struct vg_diags *d, const char *rule)
{
    d->rule = rule;
    d->rule_errors = 0;
}

size_t vg_diags_rule_errors(const struct vg_diags *d, const char *rule)
{
    size_t n = 0;
    for (size_t i = 0; rule && i < d->n; i++)
        n += d->v[i].severity == VG_SEV_ERROR && d->v[i].rule && !strcasecmp(d->v[i].rule, rule);
    return n;
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

/* A scalar's text without surrounding whitespace, which .NET's converters (numbers, bool,
 * TimeSpan) ignore: a ConfigMap value " 10" binds as 10. *copy is what to free. */
static const char *trimmed(const struct vg_node *n, char **copy)
{
    const char *s = vg_node_str(n);
    *copy = NULL;
    if (!s || !*s || (!isspace((unsigned char)s[0]) && !isspace((unsigned char)s[n->len - 1])))
        return s;
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    *copy = vg_strndup(s, len);
    return *copy ? *copy : "";
}

int vg_node_to_bool(const struct vg_node *n, const char *path, struct vg_diags *d, bool *out)
{
    char *copy;
    const char *s = trimmed(n, &copy);
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    if (s) {
        for (size_t i = 0; i < VG_ARRAY_SIZE(yes); i++) {
            if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
                *out = strcasecmp(s, yes[i]) == 0;
                free(copy);
                return 0;
            }
        }
    }
    free(copy);
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
    char *copy;
    const char *s = trimmed(n, &copy);
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
            free(copy);
            if ((min != 0 || max != 0) && (v < min || v > max)) {
                vg_diag_err(d, &n->pos, path, "expected %s, got %s (out of range)", want,
                            describe(n, buf, sizeof(buf)));
                return VG_ECONFIG;
            }
            *out = v;
            return 0;
        }
    }
    free(copy);
    vg_diag_err(d, n ? &n->pos : NULL, path, "expected %s, got %s", want,
                describe(n, buf, sizeof(buf)));
    return VG_ECONFIG;
}

int vg_node_to_int(const struct vg_node *n, const char *path, int64_t min, int64_t max,
                   struct vg_diags *d, int64_t *out)
{
    char *copy;
    const char *s = trimmed(n, &copy);
    char want[64], buf[72];
    range_text(want, sizeof(want), (double)min, (double)max, true);
    if (s && *s && (isdigit((unsigned char)*s) || *s == '-' || *s == '+')) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        bool ok = *end == '\0' && errno == 0, range = errno == ERANGE;
        free(copy);
        copy = NULL;
        if (ok) {
            if ((min != 0 || max != 0) && (v < min || v > max)) {
                vg_diag_err(d, &n->pos, path, "expected %s, got %s (out of range)", want,
                            describe(n, buf, sizeof(buf)));
                return VG_ECONFIG;
            }
            *out = v;
            return 0;
        }
        if (range) {
            vg_diag_err(d, &n->pos, path, "expected %s, got %s (out of range)", want,
                        describe(n, buf, sizeof(buf)));
            return VG_ECONFIG;
        }
    }
    free(copy);
    vg_diag_err(d, n ? &n->pos : NULL, path, "expected %s, got %s", want,
                describe(n, buf, sizeof(buf)));
    return VG_ECONFIG;
}

int vg_node_to_duration(const struct vg_node *n, const char *path, struct vg_diags *d,
                        uint64_t *out_ms)
{
    char *copy;
    const char *s = trimmed(n, &copy);
    char buf[72];
    int rc = s ? vg_parse_duration_ms(s, out_ms) : VG_EINVAL;
    free(copy);
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
    char *copy;
    const char *s = trimmed(n, &copy);
    char buf[72];
    int rc = s ? vg_parse_size(s, out_bytes) : VG_EINVAL;
    free(copy);
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
            /* dotnet-monitor's binder ignores unknown keys: a warning, so its files load */
            if (hint)
                vg_diag_warn(diags, &map->pairs[i].key_pos, kp,
                             "unknown setting, ignored; did you mean \"%s\"?", hint);
            else
                vg_diag_warn(diags, &map->pairs[i].key_pos, kp, "unknown setting, ignored");
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
