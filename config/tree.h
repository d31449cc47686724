/* The configuration tree: YAML/JSON documents parsed into nodes that remember file:line:col,
 * merged across files, queried case-insensitively. Diagnostics carry positions and key paths. */
#ifndef VG_TREE_H
#define VG_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vg_node_kind { VG_NODE_NULL, VG_NODE_SCALAR, VG_NODE_MAP, VG_NODE_SEQ };

struct vg_pos {
    const char *file; /* owned by the tree's arena; stable for the tree's lifetime */
    int line;         /* 1-based */
    int col;          /* 1-based */
};

struct vg_node;

struct vg_pair {
    char *key;
    struct vg_pos key_pos;
    struct vg_node *value;
};

struct vg_node {
    enum vg_node_kind kind;
    struct vg_pos pos;
    /* VG_NODE_SCALAR: NUL-terminated text (len excludes the NUL); quoted scalars are never
     * reinterpreted as null/bool by callers that care. */
    char *str;
    size_t len;
    bool quoted;
    /* VG_NODE_MAP: pairs[0..n); VG_NODE_SEQ: items[0..n) */
    struct vg_pair *pairs;
    struct vg_node **items;
    size_t n;
    size_t cap; /* internal: allocated slots of pairs/items */
    /* VG_NODE_MAP only: a scalar written for the key itself by another source (flattened
     * sources allow both "DiagnosticPort" and "DiagnosticPort__ConnectionMode"); else NULL. */
    struct vg_node *section_value;
};

/* --- diagnostics --- */

enum vg_severity { VG_SEV_ERROR = 0, VG_SEV_WARNING = 1 };

struct vg_diag {
    enum vg_severity severity;
    char *file; /* may be NULL for errors without a location */
    int line, col;
    char *path; /* key path, e.g. CollectionRules.HighCpu.Trigger.Settings.GreaterThan */
    char *msg;
    char *rule; /* the collection rule this diagnostic belongs to, or NULL */
};

struct vg_diags {
    struct vg_diag *v;
    size_t n, cap;
    size_t errors, warnings;
    /* While set, added diagnostics belong to this rule (a rule with an error is refused alone). */
    const char *rule;
    size_t rule_errors; /* errors added while `rule` was set, since it was last set */
};

void vg_diags_init(struct vg_diags *d);
void vg_diags_free(struct vg_diags *d);
/* Attributes the following diagnostics to a rule (NULL: to none) and resets rule_errors. The name
 * is borrowed until the next call. */
void vg_diags_set_rule(struct vg_diags *d, const char *rule);
/* Errors recorded for `rule` (case-insensitive name), counted over the stored diagnostics. */
size_t vg_diags_rule_errors(const struct vg_diags *d, const char *rule);
/* pos may be NULL; path may be NULL or "". */
void vg_diag_add(struct vg_diags *d, enum vg_severity sev, const struct vg_pos *pos,
                 const char *path, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define vg_diag_err(d, pos, path, ...) vg_diag_add((d), VG_SEV_ERROR, (pos), (path), __VA_ARGS__)
#define vg_diag_warn(d, pos, path, ...) vg_diag_add((d), VG_SEV_WARNING, (pos), (path), __VA_ARGS__)
/* "FILE:LINE:COL: error: PATH: message" */
char *vg_diag_format(const struct vg_diag *diag);
/* Sorts by file, line, col (stable) so output order is deterministic. */
void vg_diags_sort(struct vg_diags *d);

/* --- trees --- */

struct vg_tree; /* owns every node, string and file name it contains */

struct vg_tree *vg_tree_create(void);
void vg_tree_destroy(struct vg_tree *t);
struct vg_node *vg_tree_root(const struct vg_tree *t); /* a MAP, possibly empty */

/* Merges a parsed document (config/source.h reads them) into the tree, as .NET's configuration
 * sources merge: maps key by key (case-insensitive); lists element by element, a list written as
 * an index-keyed map ({"0": ..., "1": ...}, what key-per-file and environment variables produce)
 * being the same list; a null leaves a map or list as it is; any other value replaces. */
int vg_tree_merge_doc(struct vg_tree *t, struct vg_node *doc);

/* After the last merge: index-keyed maps become lists (in index order) except where a map's keys
 * are names the user chose (rule, template and egress provider names, Egress.Properties, Metadata,
 * GlobalCounter.Providers, Logging levels); a key given both a value and settings keeps only its
 * settings, with a warning (DiagnosticPort excepted: its value is its short form). */
int vg_tree_normalize(struct vg_tree *t, struct vg_diags *diags);

/* Allocation inside the tree's arena (freed with the tree). */
void *vg_tree_alloc(struct vg_tree *t, size_t n); /* zeroed */
struct vg_node *vg_tree_new_node(struct vg_tree *t, enum vg_node_kind kind,
                                 const struct vg_pos *pos);
char *vg_tree_strdup(struct vg_tree *t, const char *s);

/* --- queries (case-insensitive keys; NULL-safe) --- */

struct vg_node *vg_node_get(const struct vg_node *map, const char *key);
const struct vg_pair *vg_node_get_pair(const struct vg_node *map, const char *key);
/* Scalar text or NULL when not a scalar. */
const char *vg_node_str(const struct vg_node *n);
bool vg_node_is_null(const struct vg_node *n);
const char *vg_node_kind_name(enum vg_node_kind k);

/* Joins a key path: "a" + "b" -> "a.b"; returns a new string (NULL on OOM). */
char *vg_path_join(const char *base, const char *key);
char *vg_path_index(const char *base, size_t index); /* "a" + 3 -> "a[3]" */

/* --- typed field tables: one call validates a settings map --- */

enum vg_field_type {
    VG_FIELD_BOOL,     /* bool */
    VG_FIELD_INT,      /* int64_t, range [min,max] */
    VG_FIELD_DOUBLE,   /* double, range [min,max] */
    VG_FIELD_DURATION, /* uint64_t milliseconds, range [min,max] ms */
    VG_FIELD_SIZE,     /* uint64_t bytes, range [min,max] */
    VG_FIELD_STRING,   /* const char * borrowed from the tree */
    VG_FIELD_ENUM,     /* int index into enum_values (matched case-insensitively) */
    VG_FIELD_STRLIST,  /* struct vg_strlist (borrowed strings; array owned by the tree) */
    VG_FIELD_NODE,     /* const struct vg_node * (any shape; validated by the caller) */
};

struct vg_strlist {
    const char **v;
    size_t n;
};

struct vg_field {
    const char *name;
    enum vg_field_type type;
    size_t offset;                  /* into the output struct */
    size_t set_offset;              /* offset of a bool "was set" flag, or (size_t)-1 */
    double min, max;                /* numeric ranges; both 0 means unbounded */
    const char *const *enum_values; /* NULL-terminated, for VG_FIELD_ENUM */
    bool required;
    const char *help; /* short description shown in errors, e.g. "a percentage 0-100" */
};
#define VG_NO_SET ((size_t)-1)

/* Validates `map` (a MAP node or NULL) against `fields`, writing values into `out`.
 * Unknown keys are warnings with a did-you-mean (dotnet-monitor's binder ignores them). Missing
 * keys fall back to `defaults` (a MAP node or NULL, e.g. CollectionRuleDefaults.Triggers); missing
 * required keys are errors. Every problem is added to diags; returns the number of errors added. */
size_t vg_fields_apply(struct vg_tree *t, const struct vg_field *fields, size_t nfields,
                       const struct vg_node *map, const struct vg_node *defaults, const char *path,
                       void *out, struct vg_diags *diags);

/* Scalar conversions used by vg_fields_apply, exposed for hand-written validators.
 * Each adds a diagnostic on failure and returns 0 or VG_ECONFIG. */
int vg_node_to_bool(const struct vg_node *n, const char *path, struct vg_diags *d, bool *out);
int vg_node_to_int(const struct vg_node *n, const char *path, int64_t min, int64_t max,
                   struct vg_diags *d, int64_t *out);
int vg_node_to_double(const struct vg_node *n, const char *path, double min, double max,
                      struct vg_diags *d, double *out);
int vg_node_to_duration(const struct vg_node *n, const char *path, struct vg_diags *d,
                        uint64_t *out_ms);
int vg_node_to_size(const struct vg_node *n, const char *path, struct vg_diags *d,
                    uint64_t *out_bytes);

/* Suggests the closest of `candidates` (NULL-terminated) to `word`, or NULL. */
const char *vg_did_you_mean(const char *word, const char *const *candidates);

#endif
