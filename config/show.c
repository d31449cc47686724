/* `vigil check --show`: the merged configuration as JSON, rules with templates resolved,
 * secrets redacted. */
#include "config/config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void put_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static bool is_number(const char *s)
{
    if (!*s)
        return false;
    char *end;
    strtod(s, &end);
    return *end == '\0' && !isspace((unsigned char)*s) && strncasecmp(s, "0x", 2) != 0 &&
           strcasecmp(s, "nan") != 0 && strcasecmp(s, "inf") != 0 && strcasecmp(s, "infinity");
}

static void indent(FILE *out, int depth)
{
    fputc('\n', out);
    for (int i = 0; i < depth; i++)
        fputs("  ", out);
}

/* A comment after a value saying where it was written: FILE:LINE:COL, a key-per-file path or
 * env:NAME (a name holding the comment's end marker is escaped). */
static void show_origin(FILE *out, const struct vg_node *n, unsigned flags)
{
    if (!(flags & VG_SHOW_SOURCES) || !n->pos.file)
        return;
    fputs(" /* ", out);
    for (const char *p = n->pos.file; *p; p++) {
        if (p[0] == '*' && p[1] == '/')
            fputs("*\\", out);
        else if ((unsigned char)*p >= 0x20)
            fputc(*p, out);
        else
            fputc('?', out);
    }
    if (n->pos.line > 0)
        fprintf(out, ":%d:%d", n->pos.line, n->pos.col);
    fputs(" */", out);
}

static void show_node(FILE *out, const struct vg_node *n, int depth, bool redact, unsigned flags)
{
    if (n && n->kind == VG_NODE_MAP && n->section_value)
        n = n->section_value; /* DiagnosticPort's short form wins over its settings */
    if (!n || n->kind == VG_NODE_NULL) {
        fputs("null", out);
        if (n)
            show_origin(out, n, flags);
        return;
    }
    if (n->kind == VG_NODE_SCALAR) {
        if (redact && strncmp(n->str, "${", 2) != 0)
            put_json_string(out, "***");
        else if (!n->quoted &&
                 (is_number(n->str) || !strcmp(n->str, "true") || !strcmp(n->str, "false")))
            fputs(n->str, out);
        else
            put_json_string(out, n->str);
        show_origin(out, n, flags);
        return;
    }
    bool map = n->kind == VG_NODE_MAP;
    fputc(map ? '{' : '[', out);
    for (size_t i = 0; i < n->n; i++) {
        indent(out, depth + 1);
        if (map) {
            put_json_string(out, n->pairs[i].key);
            fputs(": ", out);
            show_node(out, n->pairs[i].value, depth + 1,
                      redact || vg_config_is_secret_key(n->pairs[i].key), flags);
        } else {
            show_node(out, n->items[i], depth + 1, redact, flags);
        }
        if (i + 1 < n->n)
            fputc(',', out);
    }
    if (n->n)
        indent(out, depth);
    fputc(map ? '}' : ']', out);
}

void vg_config_show(const struct vg_config *cfg, FILE *out, unsigned flags)
{
    const struct vg_node *root = vg_tree_root(cfg->tree);
    fputc('{', out);
    bool first = true;
    for (size_t i = 0; i < root->n; i++) {
        const struct vg_pair *p = &root->pairs[i];
        if (strcasecmp(p->key, "Templates") == 0)
            continue; /* already substituted into the rules below */
        fputs(first ? "" : ",", out);
        first = false;
        indent(out, 1);
        put_json_string(out, p->key);
        fputs(": ", out);
        if (strcasecmp(p->key, "CollectionRules") == 0) {
            fputc('{', out);
            for (size_t r = 0; r < cfg->settings.n_rules; r++) {
                indent(out, 2);
                put_json_string(out, cfg->settings.rules[r].name);
                fputs(": ", out);
                show_node(out, cfg->settings.rules[r].raw, 2, false, flags);
                if (r + 1 < cfg->settings.n_rules)
                    fputc(',', out);
            }
            if (cfg->settings.n_rules)
                indent(out, 1);
            fputc('}', out);
            continue;
        }
        show_node(out, p->value, 1, vg_config_is_secret_key(p->key), flags);
    }
    if (!first)
        fputc('\n', out);
    fputs("}\n", out);
}
