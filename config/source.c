/* Configuration sources: YAML/JSON documents (the format chosen by name), key-per-file
 * directories and environment variables, each turned into a document of the tree. */
#include "config/source.h"

#include "config/error.h"
#include "config/tree_int.h"
#include "config/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEY_SEP "__"
#define ENV_PREFIX "DotnetMonitor_"

static bool has_suffix(const char *s, const char *suf)
{
    size_t ls = strlen(s), lf = strlen(suf);
    return ls >= lf && strcasecmp(s + ls - lf, suf) == 0;
}

/* ---------- YAML / JSON documents ---------- */

int vg_source_parse(struct vg_tree *t, const char *name, const char *data, size_t len, bool json,
                    struct vg_diags *diags, struct vg_node **out)
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

int vg_source_load_buffer(struct vg_tree *t, const char *name, const char *data, size_t len,
                          bool json, struct vg_diags *diags)
{
    struct vg_node *doc;
    int rc = vg_source_parse(t, name, data, len, json, diags, &doc);
    return rc ? rc : vg_tree_merge_doc(t, doc);
}

/* Reads a whole regular file of at most `max` bytes (NUL-terminated). Problems are diagnostics
 * at `where`; returns 0, VG_EPARSE or VG_ENOMEM. */
static int read_file(const char *path, size_t max, const struct vg_pos *where,
                     struct vg_diags *diags, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        vg_diag_err(diags, where, NULL, "cannot open: %s", strerror(errno));
        return VG_EPARSE;
    }
    struct stat st;
    int rc = 0;
    char *buf = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        vg_diag_err(diags, where, NULL, "not a regular file");
        rc = VG_EPARSE;
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        vg_diag_err(diags, where, NULL, "file is too large (%lld bytes; the limit is %zu)",
                    (long long)st.st_size, max);
        rc = VG_EPARSE;
        goto out;
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        rc = VG_ENOMEM;
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            vg_diag_err(diags, where, NULL, "read failed: %s", strerror(errno));
            rc = VG_EPARSE;
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

/* ---------- last good content ---------- */

struct cached {
    char *path;
    char *data;
    size_t len;
    time_t when;
    unsigned gen;
};

struct vg_source_cache {
    struct cached *v;
    size_t n, cap;
    unsigned gen;
};

struct vg_source_cache *vg_source_cache_create(void)
{
    return calloc(1, sizeof(struct vg_source_cache));
}

void vg_source_cache_destroy(struct vg_source_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].path);
        free(c->v[i].data);
    }
    free(c->v);
    free(c);
}

void vg_source_cache_begin(struct vg_source_cache *c)
{
    if (c)
        c->gen++;
}

void vg_source_cache_end(struct vg_source_cache *c)
{
    size_t k = 0;
    for (size_t i = 0; c && i < c->n; i++) {
        if (c->v[i].gen == c->gen) {
            c->v[k++] = c->v[i];
        } else {
            free(c->v[i].path);
            free(c->v[i].data);
        }
    }
    if (c)
        c->n = k;
}

static struct cached *cache_find(struct vg_source_cache *c, const char *path)
{
    for (size_t i = 0; c && i < c->n; i++)
        if (strcmp(c->v[i].path, path) == 0)
            return &c->v[i];
    return NULL;
}

/* Takes ownership of data. */
static int cache_put(struct vg_source_cache *c, const char *path, char *data, size_t len)
{
    struct cached *e = cache_find(c, path);
    if (!e) {
        if (vg_grow((void **)&c->v, &c->cap, c->n, sizeof(*c->v), 8)) {
            free(data);
            return VG_ENOMEM;
        }
        e = &c->v[c->n];
        memset(e, 0, sizeof(*e));
        if (!(e->path = vg_strdup(path))) {
            free(data);
            return VG_ENOMEM;
        }
        c->n++;
    }
    free(e->data);
    e->data = data;
    e->len = len;
    e->when = time(NULL);
    e->gen = c->gen;
    return 0;
}

static void copy_as_warnings(struct vg_diags *to, const struct vg_diags *from)
{
    for (size_t i = 0; i < from->n; i++) {
        const struct vg_diag *g = &from->v[i];
        struct vg_pos pos = {g->file, g->line, g->col};
        vg_diag_warn(to, g->file ? &pos : NULL, g->path, "%s", g->msg);
    }
}

static void copy_diags(struct vg_diags *to, const struct vg_diags *from)
{
    for (size_t i = 0; i < from->n; i++) {
        const struct vg_diag *g = &from->v[i];
        struct vg_pos pos = {g->file, g->line, g->col};
        vg_diag_add(to, g->severity, g->file ? &pos : NULL, g->path, "%s", g->msg);
    }
}

static int read_document(struct vg_tree *t, const char *path, struct vg_source_cache *cache,
                         struct vg_diags *diags, struct vg_node **doc)
{
    struct vg_pos where = {vg__tree_intern_file(t, path), 0, 0};
    if (!where.file)
        return VG_ENOMEM;
    bool json = has_suffix(path, ".json");
    struct vg_diags scratch;
    vg_diags_init(&scratch);
    char *data = NULL;
    size_t len = 0;
    int rc = read_file(path, VG__MAX_FILE_BYTES, &where, &scratch, &data, &len);
    if (rc == 0)
        rc = vg_source_parse(t, path, data, len, json, &scratch, doc);
    struct cached *last = rc == VG_EPARSE ? cache_find(cache, path) : NULL;
    if (rc == 0 && cache) {
        rc = cache_put(cache, path, data, len);
        data = NULL;
    } else if (last) {
        /* The previous content parsed: keep it and say why, so a bad edit of one file does not
         * take every rule down (a ConfigMap edited in place, an editor's half-written save). */
        struct vg_diags again;
        vg_diags_init(&again);
        int rc2 = vg_source_parse(t, path, last->data, last->len, json, &again, doc);
        if (rc2 == 0) {
            char when[32];
            struct tm tm;
            localtime_r(&last->when, &tm);
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
            copy_as_warnings(diags, &scratch);
            vg_diag_warn(diags, &where, NULL,
                         "no longer parses; its last good content (read %s) stays in use until "
                         "it is fixed",
                         when);
            last->gen = cache->gen;
            vg_diags_free(&scratch);
            vg_diags_free(&again);
            free(data);
            return 0;
        }
        vg_diags_free(&again);
        if (rc2 == VG_ENOMEM)
            rc = rc2;
    }
    copy_diags(diags, &scratch);
    vg_diags_free(&scratch);
    free(data);
    return rc;
}

/* ---------- key paths (key-per-file, environment) ---------- */

/* Splits "A__B__C" into segments; false when a segment is empty. */
static bool split_key(const char *key, char **segs, size_t max, size_t *n, char *buf)
{
    strcpy(buf, key);
    *n = 0;
    char *p = buf;
    for (;;) {
        char *sep = strstr(p, KEY_SEP);
        if (sep)
            *sep = '\0';
        if (!*p || *n == max)
            return false;
        segs[(*n)++] = p;
        if (!sep)
            return true;
        p = sep + strlen(KEY_SEP);
    }
}

static bool known_section(const char *name, size_t len, const char *const *sections)
{
    for (size_t i = 0; sections && sections[i]; i++)
        if (strlen(sections[i]) == len && strncasecmp(name, sections[i], len) == 0)
            return true;
    return false;
}

static size_t first_seg_len(const char *key)
{
    const char *sep = strstr(key, KEY_SEP);
    return sep ? (size_t)(sep - key) : strlen(key);
}

/* Builds {seg0: {seg1: ... value}} with every node at `pos`. An empty value is null, as .NET's
 * binder treats an empty string for anything but a string. */
static int key_doc(struct vg_tree *t, char **segs, size_t n, const char *value, size_t len,
                   const struct vg_pos *pos, struct vg_node **out)
{
    struct vg_node *leaf = vg_tree_new_node(t, len ? VG_NODE_SCALAR : VG_NODE_NULL, pos);
    if (!leaf)
        return VG_ENOMEM;
    if (len) {
        if (!(leaf->str = vg__tree_alloc(t, len + 1)))
            return VG_ENOMEM;
        memcpy(leaf->str, value, len);
        leaf->len = len;
        leaf->quoted = true; /* text, never reinterpreted as null or a bool by the YAML rules */
    }
    struct vg_node *child = leaf;
    for (size_t i = n; i-- > 0;) {
        struct vg_node *m = vg_tree_new_node(t, VG_NODE_MAP, pos);
        char *k = m ? vg_tree_strdup(t, segs[i]) : NULL;
        if (!k || vg__node_push_pair(t, m, k, pos, child))
            return VG_ENOMEM;
        child = m;
    }
    *out = child;
    return 0;
}

/* The node at segs in doc, or NULL. */
static const struct vg_node *doc_lookup(const struct vg_node *doc, char **segs, size_t n)
{
    for (size_t i = 0; doc && i < n; i++)
        doc = vg_node_get(doc, segs[i]);
    return doc;
}

/* ---------- key-per-file ---------- */

static int read_key_file(struct vg_tree *t, const char *path, struct vg_diags *diags,
                         struct vg_node **doc)
{
    *doc = NULL;
    struct vg_pos where = {vg__tree_intern_file(t, path), 0, 0};
    if (!where.file)
        return VG_ENOMEM;
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    char *segs[VG__MAX_DEPTH], *buf = malloc(strlen(name) + 1);
    size_t n;
    char *data = NULL;
    size_t len = 0;
    int rc = 0;
    if (!buf)
        return VG_ENOMEM;
    if (!split_key(name, segs, VG_ARRAY_SIZE(segs), &n, buf)) {
        vg_diag_err(diags, &where, NULL,
                    "key-per-file name has an empty key between \"__\" separators");
        rc = VG_EPARSE;
        goto out;
    }
    if ((rc = read_file(path, VG__MAX_SCALAR_BYTES, &where, diags, &data, &len)))
        goto out;
    if (memchr(data, '\0', len)) {
        vg_diag_err(diags, &where, NULL, "key-per-file value is not text (it holds a NUL byte)");
        rc = VG_EPARSE;
        goto out;
    }
    /* .NET's key-per-file provider drops one trailing newline (kubectl --from-file keeps it). */
    if (len && data[len - 1] == '\n')
        len--;
    if (len && data[len - 1] == '\r')
        len--;
    rc = key_doc(t, segs, n, data, len, &where, doc);
out:
    free(data);
    free(buf);
    return rc;
}

int vg_source_read(struct vg_tree *t, const struct vg_source_entry *e,
                   struct vg_source_cache *cache, struct vg_diags *diags, struct vg_node **doc)
{
    *doc = NULL;
    if (e->kind == VG_SOURCE_KEY_PER_FILE)
        return read_key_file(t, e->path, diags, doc);
    return read_document(t, e->path, cache, diags, doc);
}

/* ---------- directories ---------- */

static bool document_name(const char *name)
{
    return has_suffix(name, ".yaml") || has_suffix(name, ".yml") || has_suffix(name, ".json");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void vg_source_entries_free(struct vg_source_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].path);
    free(v);
}

/* Why a file is not a key-per-file entry, or NULL when it is one. */
static const char *not_a_key(const char *name, const char *const *sections, char *buf, size_t len)
{
    size_t first = first_seg_len(name);
    if (known_section(name, first, sections))
        return NULL;
    char *word = vg_strndup(name, first);
    const char *hint = word ? vg_did_you_mean(word, sections) : NULL;
    free(word);
    if (hint)
        snprintf(buf, len,
                 "not read: neither a YAML/JSON file nor a key-per-file entry (did you mean "
                 "\"%s\" as its first key?)",
                 hint);
    else
        snprintf(buf, len,
                 "not read: neither a YAML/JSON file (.yaml, .yml, .json) nor a key-per-file "
                 "entry (a name such as CollectionRules__NAME__Trigger__Type)");
    return buf;
}

int vg_source_scan_dir(struct vg_tree *t, const char *dir, const char *const *sections,
                       size_t already, size_t max_entries, struct vg_diags *diags,
                       struct vg_source_entry **v, size_t *n)
{
    struct vg_pos where = {vg__tree_intern_file(t, dir), 0, 0};
    if (!where.file)
        return VG_ENOMEM;
    DIR *dp = opendir(dir);
    if (!dp) {
        vg_diag_err(diags, &where, NULL, "cannot read configuration directory: %s",
                    strerror(errno));
        return 0;
    }
    char **names = NULL;
    size_t nn = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.' || strncmp(de->d_name, "ignore.", 7) == 0)
            continue;
        if ((rc = vg_grow((void **)&names, &cap, nn, sizeof(*names), 32)))
            goto out;
        if (!(names[nn] = vg_strdup(de->d_name))) {
            rc = VG_ENOMEM;
            goto out;
        }
        nn++;
    }
    if (nn + already > max_entries) {
        vg_diag_err(diags, &where, NULL,
                    "too many configuration files (%zu; the limit is %zu): is this the right "
                    "directory?",
                    nn + already, max_entries);
        goto out;
    }
    if (nn > 1)
        qsort(names, nn, sizeof(*names), cmp_str);
    /* documents first, then key-per-file entries: the latter take precedence, as in
     * dotnet-monitor where key-per-file is read after settings.json */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < nn; i++) {
            bool doc = document_name(names[i]);
            if (doc != (pass == 0))
                continue;
            char *path = vg_asprintf("%s/%s", dir, names[i]);
            if (!path) {
                rc = VG_ENOMEM;
                goto out;
            }
            struct stat st;
            char why[256];
            const char *skip = NULL;
            bool exists = stat(path, &st) == 0; /* not: a dangling symlink mid-update */
            if (exists && S_ISDIR(st.st_mode))
                skip = "not read: a directory (give it its own --config-dir to read it)";
            else if (exists && !doc)
                skip = not_a_key(names[i], sections, why, sizeof(why));
            if (!exists || skip) {
                struct vg_pos at = {vg__tree_intern_file(t, path), 0, 0};
                if (skip)
                    vg_diag_warn(diags, at.file ? &at : &where, NULL, "%s", skip);
                free(path);
                continue;
            }
            struct vg_source_entry *nv = realloc(*v, (*n + 1) * sizeof(**v));
            if (!nv) {
                free(path);
                rc = VG_ENOMEM;
                goto out;
            }
            *v = nv;
            (*v)[*n].path = path;
            (*v)[*n].kind = doc ? VG_SOURCE_DOCUMENT : VG_SOURCE_KEY_PER_FILE;
            (*n)++;
        }
    }
out:
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    closedir(dp);
    return rc;
}

/* ---------- environment variables ---------- */

struct env_var {
    const char *name; /* full variable name (not NUL-terminated: name_len) */
    const char *key;  /* key path (key_len), within the name or a literal */
    const char *value;
    size_t name_len, key_len;
};

static int env_cmp(const void *a, const void *b)
{
    const struct env_var *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* The key path a variable sets: false when it does not apply to this kind. */
static bool env_key(const char *entry, size_t name_len, enum vg_env_kind kind,
                    const char *const *sections, const char **key, size_t *key_len)
{
    size_t plen = strlen(ENV_PREFIX);
    bool prefixed = name_len > plen && strncasecmp(entry, ENV_PREFIX, plen) == 0;
    *key = entry;
    *key_len = name_len;
    if (kind == VG_ENV_PREFIXED) {
        *key = entry + plen;
        *key_len = name_len - plen;
        return prefixed;
    }
    if (prefixed)
        return false;
    if (name_len == 15 && strncasecmp(entry, "ASPNETCORE_URLS", 15) == 0) {
        *key = "Urls";
        *key_len = 4;
        return true;
    }
    size_t first = first_seg_len(entry);
    return known_section(entry, first < name_len ? first : name_len, sections);
}

int vg_source_env(struct vg_tree *t, const char *const *envp, enum vg_env_kind kind,
                  const char *const *sections, struct vg_diags *diags, struct vg_node **doc,
                  size_t *count)
{
    *doc = NULL;
    *count = 0;
    struct env_var *vars = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (size_t i = 0; envp && envp[i]; i++) {
        const char *eq = strchr(envp[i], '=');
        if (!eq || eq == envp[i])
            continue;
        size_t name_len = (size_t)(eq - envp[i]), key_len;
        const char *key;
        if (!env_key(envp[i], name_len, kind, sections, &key, &key_len))
            continue;
        if ((rc = vg_grow((void **)&vars, &cap, n, sizeof(*vars), 16)))
            goto out;
        vars[n++] = (struct env_var){envp[i], key, eq + 1, name_len, key_len};
    }
    if (n > 1)
        qsort(vars, n, sizeof(*vars), env_cmp);
    struct vg_node *root = n ? vg_tree_new_node(t, VG_NODE_MAP, NULL) : NULL;
    if (n && !root) {
        rc = VG_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char *name = vg_strndup(vars[i].name, vars[i].name_len);
        size_t keylen = vars[i].key_len;
        char *key = vg_strndup(vars[i].key, keylen);
        char *label = name ? vg_asprintf("env:%s", name) : NULL;
        struct vg_pos pos = {label ? vg__tree_intern_file(t, label) : NULL, 0, 0};
        char *segs[VG__MAX_DEPTH], *buf = key ? malloc(keylen + 1) : NULL;
        size_t ns;
        struct vg_node *one = NULL;
        if (!name || !key || !label || !pos.file || !buf) {
            rc = VG_ENOMEM;
        } else if (!split_key(key, segs, VG_ARRAY_SIZE(segs), &ns, buf)) {
            vg_diag_warn(diags, &pos, NULL,
                         "not read: the variable name has an empty key between \"__\" "
                         "separators");
        } else {
            const struct vg_node *prev = doc_lookup(root, segs, ns);
            if (prev && prev->kind == VG_NODE_SCALAR)
                vg_diag_warn(diags, &pos, NULL, "sets the same key as %s, which is ignored",
                             prev->pos.file ? prev->pos.file + 4 : "another variable");
            rc = key_doc(t, segs, ns, vars[i].value, strlen(vars[i].value), &pos, &one);
            if (rc == 0)
                rc = vg__tree_merge(t, root, one);
            if (rc == 0)
                (*count)++;
        }
        free(buf);
        free(label);
        free(key);
        free(name);
        if (rc)
            goto out;
    }
    if (*count)
        *doc = root;
out:
    free(vars);
    return rc;
}
