/* YAML reader: libyaml events -> tree nodes with positions, within the hostile-input limits. */
#include "config/tree_int.h"

#include "config/error.h"

#include <string.h>
#include <strings.h>
#include <yaml.h>

struct frame {
    struct vg_node *node;
    char *key; /* MAP: key waiting for its value */
    struct vg_pos key_pos;
};

struct anchor {
    char *name;
    struct vg_node *node;
};

struct yparse {
    struct vg__builder *b;
    struct frame stack[VG__MAX_DEPTH + 1];
    int depth;
    struct anchor anchors[VG__MAX_ANCHORS];
    size_t n_anchors;
    struct vg_node *doc;
    int docs;
};

static struct vg_pos mark_pos(struct yparse *p, const yaml_mark_t *m)
{
    struct vg_pos pos = {p->b->file, (int)m->line + 1, (int)m->column + 1};
    return pos;
}

static bool is_plain_null(const yaml_event_t *e)
{
    if (e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)e->data.scalar.value;
    return e->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcasecmp(v, "null") == 0;
}

/* Copies an aliased subtree, charging every node to the file's budget (billion laughs). */
static struct vg_node *clone_counted(struct yparse *p, const struct vg_node *src, int depth)
{
    struct vg_tree *t = p->b->tree;
    if (!vg__builder_count(p->b, &src->pos))
        return NULL;
    if (depth > VG__MAX_DEPTH) {
        if (!p->b->failed)
            vg_diag_err(p->b->diags, &src->pos, NULL, "nesting deeper than %d levels",
                        VG__MAX_DEPTH);
        p->b->failed = true;
        return NULL;
    }
    struct vg_node *n = vg_tree_new_node(t, src->kind, &src->pos);
    if (!n)
        return NULL;
    n->quoted = src->quoted;
    n->str = src->str; /* scalars are immutable in the arena: share the text */
    n->len = src->len;
    for (size_t i = 0; src->kind == VG_NODE_SEQ && i < src->n; i++) {
        struct vg_node *c = clone_counted(p, src->items[i], depth + 1);
        if (!c || vg__node_push_item(t, n, c))
            return NULL;
    }
    for (size_t i = 0; src->kind == VG_NODE_MAP && i < src->n; i++) {
        struct vg_node *c = clone_counted(p, src->pairs[i].value, depth + 1);
        if (!c || vg__node_push_pair(t, n, src->pairs[i].key, &src->pairs[i].key_pos, c))
            return NULL;
    }
    return n;
}

static int remember_anchor(struct yparse *p, const yaml_char_t *name, struct vg_node *node,
                           const struct vg_pos *pos)
{
    if (!name)
        return 0;
    if (p->n_anchors >= VG__MAX_ANCHORS) {
        vg_diag_err(p->b->diags, pos, NULL, "more than %d YAML anchors", VG__MAX_ANCHORS);
        return VG_EPARSE;
    }
    char *copy = vg_tree_strdup(p->b->tree, (const char *)name);
    if (!copy)
        return VG_ENOMEM;
    p->anchors[p->n_anchors].name = copy;
    p->anchors[p->n_anchors].node = node;
    p->n_anchors++;
    return 0;
}

/* Places a finished value into the parent (or makes it the document). */
static int attach(struct yparse *p, struct vg_node *value, const struct vg_pos *pos)
{
    if (p->depth == 0) {
        p->doc = value;
        return 0;
    }
    struct frame *f = &p->stack[p->depth - 1];
    struct vg_tree *t = p->b->tree;
    if (f->node->kind == VG_NODE_SEQ)
        return vg__node_push_item(t, f->node, value);
    if (!f->key) {
        /* value is a key */
        if (value->kind != VG_NODE_SCALAR && value->kind != VG_NODE_NULL) {
            vg_diag_err(p->b->diags, pos, NULL, "mapping keys must be plain strings");
            return VG_EPARSE;
        }
        const char *k = value->kind == VG_NODE_SCALAR ? value->str : "";
        if (strlen(k) != value->len) {
            vg_diag_err(p->b->diags, pos, NULL, "mapping key contains a NUL character");
            return VG_EPARSE;
        }
        for (size_t i = 0; i < f->node->n; i++) {
            if (strcasecmp(f->node->pairs[i].key, k) == 0) {
                vg_diag_err(p->b->diags, pos, NULL,
                            "duplicate key \"%s\" (first at line %d; keys are case-insensitive)", k,
                            f->node->pairs[i].key_pos.line);
                return VG_EPARSE;
            }
        }
        f->key = value->kind == VG_NODE_SCALAR ? value->str : vg_tree_strdup(t, "");
        f->key_pos = *pos;
        return f->key ? 0 : VG_ENOMEM;
    }
    int rc = vg__node_push_pair(t, f->node, f->key, &f->key_pos, value);
    f->key = NULL;
    return rc;
}

static int on_event(struct yparse *p, yaml_event_t *e)
{
    struct vg_tree *t = p->b->tree;
    struct vg_pos pos = mark_pos(p, &e->start_mark);
    switch (e->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++p->docs > 1) {
            vg_diag_err(p->b->diags, &pos, NULL,
                        "more than one YAML document in a file; split them into files");
            return VG_EPARSE;
        }
        return 0;
    case YAML_SCALAR_EVENT: {
        if (!vg__builder_count(p->b, &pos))
            return VG_EPARSE;
        if (e->data.scalar.length > VG__MAX_SCALAR_BYTES) {
            vg_diag_err(p->b->diags, &pos, NULL, "value is too long (%zu bytes; the limit is %u)",
                        e->data.scalar.length, VG__MAX_SCALAR_BYTES);
            return VG_EPARSE;
        }
        bool null = is_plain_null(e);
        struct vg_node *n = vg_tree_new_node(t, null ? VG_NODE_NULL : VG_NODE_SCALAR, &pos);
        if (!n)
            return VG_ENOMEM;
        if (!null) {
            n->str = vg__tree_alloc(t, e->data.scalar.length + 1);
            if (!n->str)
                return VG_ENOMEM;
            memcpy(n->str, e->data.scalar.value, e->data.scalar.length);
            n->len = e->data.scalar.length;
            n->quoted = e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        }
        int rc = remember_anchor(p, e->data.scalar.anchor, n, &pos);
        return rc ? rc : attach(p, n, &pos);
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        if (!vg__builder_count(p->b, &pos))
            return VG_EPARSE;
        if (p->depth >= VG__MAX_DEPTH) {
            vg_diag_err(p->b->diags, &pos, NULL, "nesting deeper than %d levels", VG__MAX_DEPTH);
            return VG_EPARSE;
        }
        bool map = e->type == YAML_MAPPING_START_EVENT;
        struct vg_node *n = vg_tree_new_node(t, map ? VG_NODE_MAP : VG_NODE_SEQ, &pos);
        if (!n)
            return VG_ENOMEM;
        const yaml_char_t *anchor =
            map ? e->data.mapping_start.anchor : e->data.sequence_start.anchor;
        int rc = remember_anchor(p, anchor, n, &pos);
        if (rc)
            return rc;
        /* A map used as a key is rejected when it is attached; check the parent now. */
        if (p->depth > 0) {
            struct frame *pf = &p->stack[p->depth - 1];
            if (pf->node->kind == VG_NODE_MAP && !pf->key) {
                vg_diag_err(p->b->diags, &pos, NULL, "mapping keys must be plain strings");
                return VG_EPARSE;
            }
        }
        p->stack[p->depth].node = n;
        p->stack[p->depth].key = NULL;
        p->depth++;
        return 0;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        struct vg_node *n = p->stack[--p->depth].node;
        return attach(p, n, &n->pos);
    }
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)e->data.alias.anchor;
        struct vg_node *target = NULL;
        for (size_t i = p->n_anchors; i-- > 0;) {
            if (strcmp(p->anchors[i].name, name) == 0) {
                target = p->anchors[i].node;
                break;
            }
        }
        if (!target) {
            vg_diag_err(p->b->diags, &pos, NULL, "unknown YAML alias \"*%s\"", name);
            return VG_EPARSE;
        }
        struct vg_node *copy = clone_counted(p, target, p->depth);
        if (!copy)
            return p->b->failed ? VG_EPARSE : VG_ENOMEM;
        copy->pos = pos;
        return attach(p, copy, &pos);
    }
    default:
        return 0;
    }
}

int vg__parse_yaml(struct vg__builder *b, const char *data, size_t len, struct vg_node **out)
{
    yaml_parser_t parser;
    struct yparse *p = calloc(1, sizeof(*p));
    if (!p)
        return VG_ENOMEM;
    p->b = b;
    if (!yaml_parser_initialize(&parser)) {
        free(p);
        return VG_ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    int rc = 0;
    for (;;) {
        yaml_event_t e;
        if (!yaml_parser_parse(&parser, &e)) {
            struct vg_pos pos = mark_pos(p, &parser.problem_mark);
            if (parser.error == YAML_READER_ERROR) {
                /* Reader errors (bad encoding) carry a byte offset instead of a mark. */
                pos.line = 1;
                pos.col = 1;
                for (size_t i = 0; i < parser.problem_offset && i < len; i++) {
                    if (data[i] == '\n') {
                        pos.line++;
                        pos.col = 1;
                    } else if (((unsigned char)data[i] & 0xc0) != 0x80) {
                        pos.col++;
                    }
                }
            }
            if (parser.error == YAML_MEMORY_ERROR) {
                rc = VG_ENOMEM;
            } else {
                const char *problem = parser.problem ? parser.problem : "malformed YAML";
                if (parser.context)
                    vg_diag_err(b->diags, &pos, NULL, "YAML syntax error: %s %s", problem,
                                parser.context);
                else
                    vg_diag_err(b->diags, &pos, NULL, "YAML syntax error: %s", problem);
                rc = VG_EPARSE;
            }
            break;
        }
        bool end = e.type == YAML_STREAM_END_EVENT;
        rc = on_event(p, &e);
        yaml_event_delete(&e);
        if (rc || end)
            break;
    }
    yaml_parser_delete(&parser);
    if (rc == 0)
        *out = p->doc;
    free(p);
    return rc;
}
