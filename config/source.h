/* Configuration sources: where the documents merged into a tree come from. Every node remembers
 * its origin: FILE:LINE:COL for YAML/JSON documents, the file's path for a key-per-file entry
 * (line 0), "env:NAME" for an environment variable (line 0).
 *
 * Precedence (lowest first), as dotnet-monitor's: environment variables without prefix (only
 * keys of known sections, and ASPNETCORE_URLS as Urls); then each configuration directory in
 * order, its YAML/JSON documents in name order before its key-per-file entries; then
 * DotnetMonitor_ / DOTNETMONITOR_ variables. */
#ifndef VG_SOURCE_H
#define VG_SOURCE_H

#include "config/tree.h"

#include <stdbool.h>
#include <stddef.h>

/* Parses YAML (or JSON) text into the tree's arena without merging it (so callers can inspect
 * the document first). *doc is NULL for an empty document. `name` is used in positions.
 * Returns 0, VG_EPARSE (rejected, diagnostics added) or VG_ENOMEM. */
int vg_source_parse(struct vg_tree *t, const char *name, const char *data, size_t len, bool json,
                    struct vg_diags *diags, struct vg_node **doc);
/* vg_source_parse + vg_tree_merge_doc. */
int vg_source_load_buffer(struct vg_tree *t, const char *name, const char *data, size_t len,
                          bool json, struct vg_diags *diags);

/* The last good content of each document file, so a reload keeps a file that no longer parses
 * as it was (with a warning) instead of rejecting the whole configuration. Owned by the caller
 * across loads; one loader at a time. */
struct vg_source_cache;
struct vg_source_cache *vg_source_cache_create(void);
void vg_source_cache_destroy(struct vg_source_cache *c); /* NULL-safe */

enum vg_source_kind {
    VG_SOURCE_DOCUMENT,     /* *.yaml, *.yml, *.json */
    VG_SOURCE_KEY_PER_FILE, /* file name = key path with "__" separators, content = value */
};

struct vg_source_entry {
    char *path; /* malloc'ed */
    enum vg_source_kind kind;
};

/* Lists a configuration directory in merge order: documents (name order), then key-per-file
 * entries (name order). Hidden names (Kubernetes' ..data and ..2026_* swap directories: the
 * visible names already point through them) and "ignore." names (the key-per-file convention)
 * are skipped; any other file or directory is reported with a warning saying why it is not
 * read. A key-per-file name must start with one of `sections` (case-insensitive). More than
 * `max_entries` in all (counting `already`) is an error. Entries are appended to *v / *n. */
int vg_source_scan_dir(struct vg_tree *t, const char *dir, const char *const *sections,
                       size_t already, size_t max_entries, struct vg_diags *diags,
                       struct vg_source_entry **v, size_t *n);
void vg_source_entries_free(struct vg_source_entry *v, size_t n);

/* Reads one entry into a document (not merged; *doc NULL when there is nothing to merge).
 * With a cache, a document that fails to parse falls back to its last good content: its errors
 * become warnings. Returns 0, VG_EPARSE or VG_ENOMEM. */
int vg_source_read(struct vg_tree *t, const struct vg_source_entry *e,
                   struct vg_source_cache *cache, struct vg_diags *diags, struct vg_node **doc);

/* Starts and ends a load with a cache: entries not read since begin are dropped at end. */
void vg_source_cache_begin(struct vg_source_cache *c);
void vg_source_cache_end(struct vg_source_cache *c);

enum vg_env_kind {
    VG_ENV_PLAIN,    /* Section__Key=value (known sections only) and ASPNETCORE_URLS */
    VG_ENV_PREFIXED, /* DotnetMonitor_Section__Key=value, prefix case-insensitive */
};

/* Builds one document from `envp` ("NAME=VALUE" strings, NULL-terminated), variables taken in
 * name order; `__` separates keys, keys are case-insensitive, an empty value is null. Two
 * variables setting one key are reported. *doc is NULL when no variable applies; *count says
 * how many did. */
int vg_source_env(struct vg_tree *t, const char *const *envp, enum vg_env_kind kind,
                  const char *const *sections, struct vg_diags *diags, struct vg_node **doc,
                  size_t *count);

#endif
