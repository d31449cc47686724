/* JSON reader with positions: .NET configuration JSON (comments and trailing commas allowed),
 * strict UTF-8, bounded depth and size. Numbers stay text; strings are marked quoted. */
#include "config/tree_int.h"

#include "config/error.h"
#include "config/util.h"

#include <string.h>
#include <strings.h>

struct jparse {
    struct vg__builder *b;
    const unsigned char *s, *end, *line_start;
    int line;
};

static struct vg_pos jpos(const struct jparse *p)
{
    struct vg_pos pos = {p->b->file, p->line, (int)(p->s - p->line_start) + 1};
    return pos;
}

static int jerr(struct jparse *p, const char *msg)
{
    struct vg_pos pos = jpos(p);
    if (p->s >= p->end)
        vg_diag_err(p->b->diags, &pos, NULL, "JSON syntax error: %s (at end of file)", msg);
    else if (*p->s >= 0x20 && *p->s < 0x7f)
        vg_diag_err(p->b->diags, &pos, NULL, "JSON syntax error: %s (found '%c')", msg, *p->s);
    else
        vg_diag_err(p->b->diags, &pos, NULL, "JSON syntax error: %s (found byte 0x%02x)", msg,
                    *p->s);
    return VG_EPARSE;
}

static int skip_ws(struct jparse *p)
{
    while (p->s < p->end) {
        unsigned char c = *p->s;
        if (c == '\n') {
            p->line++;
            p->s++;
            p->line_start = p->s;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            p->s++;
        } else if (c == '/' && p->s + 1 < p->end && p->s[1] == '/') {
            while (p->s < p->end && *p->s != '\n')
                p->s++;
        } else if (c == '/' && p->s + 1 < p->end && p->s[1] == '*') {
            p->s += 2;
            for (;;) {
                if (p->s + 1 >= p->end)
                    return jerr(p, "unterminated comment");
                if (*p->s == '*' && p->s[1] == '/') {
                    p->s += 2;
                    break;
                }
                if (*p->s == '\n') {
                    p->line++;
                    p->line_start = p->s + 1;
                }
                p->s++;
            }
        } else {
            break;
        }
    }
    return 0;
}

/* Length of a valid UTF-8 sequence at s, or 0. */
static size_t utf8_len(const unsigned char *s, const unsigned char *end)
{
    unsigned char c = s[0];
    size_t n;
    unsigned min;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        n = 2;
        min = 0x80;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        min = 0x800;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        min = 0x10000;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - s) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static void put_utf8(struct vg_buf *b, unsigned cp)
{
    unsigned char o[4];
    size_t n;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        o[0] = (unsigned char)(0xf0 | (cp >> 18));
        o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    vg_buf_append(b, o, n);
}

static int hex4(struct jparse *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        if (p->s >= p->end)
            return jerr(p, "truncated \\u escape");
        unsigned char c = *p->s++;
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else {
            p->s--;
            return jerr(p, "bad \\u escape");
        }
    }
    *out = v;
    return 0;
}

static int parse_string(struct jparse *p, char **out, size_t *out_len)
{
    struct vg_buf b;
    vg_buf_init(&b);
    int rc = 0;
    p->s++; /* opening quote */
    for (;;) {
        if (p->s >= p->end) {
            rc = jerr(p, "unterminated string");
            goto out;
        }
        unsigned char c = *p->s;
        if (c == '"') {
            p->s++;
            break;
        }
        if (c < 0x20) {
            rc = jerr(p, "control character in string");
            goto out;
        }
        if (b.len > VG__MAX_SCALAR_BYTES) {
            rc = jerr(p, "string is too long");
            goto out;
        }
        if (c == '\\') {
            p->s++;
            if (p->s >= p->end) {
                rc = jerr(p, "unterminated string");
                goto out;
            }
            unsigned char e = *p->s++;
            const char *simple = NULL;
            switch (e) {
            case '"':
                simple = "\"";
                break;
            case '\\':
                simple = "\\";
                break;
            case '/':
                simple = "/";
                break;
            case 'b':
                simple = "\b";
                break;
            case 'f':
                simple = "\f";
                break;
            case 'n':
                simple = "\n";
                break;
            case 'r':
                simple = "\r";
                break;
            case 't':
                simple = "\t";
                break;
            case 'u': {
                unsigned cp;
                if ((rc = hex4(p, &cp)))
                    goto out;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    unsigned lo;
                    if (p->s + 1 >= p->end || p->s[0] != '\\' || p->s[1] != 'u') {
                        rc = jerr(p, "unpaired surrogate in \\u escape");
                        goto out;
                    }
                    p->s += 2;
                    if ((rc = hex4(p, &lo)))
                        goto out;
                    if (lo < 0xdc00 || lo > 0xdfff) {
                        rc = jerr(p, "unpaired surrogate in \\u escape");
                        goto out;
                    }
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    rc = jerr(p, "unpaired surrogate in \\u escape");
                    goto out;
                }
                if (cp == 0) {
                    rc = jerr(p, "NUL character (\\u0000) is not allowed");
                    goto out;
                }
                put_utf8(&b, cp);
                continue;
            }
            default:
                p->s--;
                rc = jerr(p, "invalid escape");
                goto out;
            }
            vg_buf_puts(&b, simple);
            continue;
        }
        size_t n = utf8_len(p->s, p->end);
        if (!n) {
            rc = jerr(p, "invalid UTF-8");
            goto out;
        }
        if (vg_buf_append(&b, p->s, n)) {
            rc = VG_ENOMEM;
            goto out;
        }
        p->s += n;
    }
    *out_len = b.len;
    *out = vg__tree_alloc(p->b->tree, b.len + 1);
    if (!*out) {
        rc = VG_ENOMEM;
        goto out;
    }
    if (b.len)
        memcpy(*out, b.data, b.len);
out:
    vg_buf_free(&b);
    return rc;
}

static int parse_value(struct jparse *p, int depth, struct vg_node **out);

static int parse_container(struct jparse *p, int depth, bool map, struct vg_node **out)
{
    struct vg_pos pos = jpos(p);
    struct vg_tree *t = p->b->tree;
    if (depth >= VG__MAX_DEPTH) {
        vg_diag_err(p->b->diags, &pos, NULL, "nesting deeper than %d levels", VG__MAX_DEPTH);
        return VG_EPARSE;
    }
    struct vg_node *n = vg_tree_new_node(t, map ? VG_NODE_MAP : VG_NODE_SEQ, &pos);
    if (!n)
        return VG_ENOMEM;
    unsigned char close = map ? '}' : ']';
    p->s++;
    int rc;
    for (;;) {
        if ((rc = skip_ws(p)))
            return rc;
        if (p->s < p->end && *p->s == close) {
            p->s++;
            break;
        }
        if (map) {
            if (p->s >= p->end || *p->s != '"')
                return jerr(p, "expected a quoted key");
            struct vg_pos kpos = jpos(p);
            char *key;
            size_t klen;
            if ((rc = parse_string(p, &key, &klen)))
                return rc;
            if (strlen(key) != klen) {
                vg_diag_err(p->b->diags, &kpos, NULL, "key contains a NUL character");
                return VG_EPARSE;
            }
            for (size_t i = 0; i < n->n; i++) {
                if (strcasecmp(n->pairs[i].key, key) == 0) {
                    vg_diag_err(
                        p->b->diags, &kpos, NULL,
                        "duplicate key \"%s\" (first at line %d; keys are case-insensitive)", key,
                        n->pairs[i].key_pos.line);
                    return VG_EPARSE;
                }
            }
            if ((rc = skip_ws(p)))
                return rc;
            if (p->s >= p->end || *p->s != ':')
                return jerr(p, "expected ':' after key");
            p->s++;
            struct vg_node *v;
            if ((rc = parse_value(p, depth + 1, &v)))
                return rc;
            if ((rc = vg__node_push_pair(t, n, key, &kpos, v)))
                return rc;
        } else {
            struct vg_node *v;
            if ((rc = parse_value(p, depth + 1, &v)))
                return rc;
            if ((rc = vg__node_push_item(t, n, v)))
                return rc;
        }
        if ((rc = skip_ws(p)))
            return rc;
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == close) {
            p->s++;
            break;
        }
        return jerr(p, map ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    *out = n;
    return 0;
}

static int parse_value(struct jparse *p, int depth, struct vg_node **out)
{
    int rc = skip_ws(p);
    if (rc)
        return rc;
    struct vg_pos pos = jpos(p);
    if (p->s >= p->end)
        return jerr(p, "expected a value");
    if (!vg__builder_count(p->b, &pos))
        return VG_EPARSE;
    unsigned char c = *p->s;
    if (c == '{' || c == '[')
        return parse_container(p, depth, c == '{', out);
    struct vg_node *n;
    if (c == '"') {
        n = vg_tree_new_node(p->b->tree, VG_NODE_SCALAR, &pos);
        if (!n)
            return VG_ENOMEM;
        if ((rc = parse_string(p, &n->str, &n->len)))
            return rc;
        n->quoted = true;
        *out = n;
        return 0;
    }
    /* literal: number, true, false, null */
    const unsigned char *start = p->s;
    while (p->s < p->end && (strchr("+-.0123456789eE", *p->s) || (*p->s >= 'a' && *p->s <= 'z')))
        p->s++;
    size_t len = (size_t)(p->s - start);
    if (len == 0)
        return jerr(p, "expected a value");
    if (len > 64) {
        p->s = start;
        return jerr(p, "literal is too long");
    }
    char lit[65];
    memcpy(lit, start, len);
    lit[len] = '\0';
    bool number = lit[0] == '-' || (lit[0] >= '0' && lit[0] <= '9');
    if (!number && strcmp(lit, "true") != 0 && strcmp(lit, "false") != 0 &&
        strcmp(lit, "null") != 0) {
        p->s = start;
        return jerr(p, "unknown literal");
    }
    if (strcmp(lit, "null") == 0) {
        n = vg_tree_new_node(p->b->tree, VG_NODE_NULL, &pos);
    } else {
        n = vg_tree_new_node(p->b->tree, VG_NODE_SCALAR, &pos);
        if (n && !(n->str = vg_tree_strdup(p->b->tree, lit)))
            return VG_ENOMEM;
        if (n)
            n->len = len;
    }
    if (!n)
        return VG_ENOMEM;
    *out = n;
    return 0;
}

int vg__parse_json(struct vg__builder *b, const char *data, size_t len, struct vg_node **out)
{
    struct jparse p = {b, (const unsigned char *)data, (const unsigned char *)data + len,
                       (const unsigned char *)data, 1};
    /* A UTF-8 byte order mark is tolerated (Windows editors). */
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        p.s += 3;
    int rc = skip_ws(&p);
    if (rc)
        return rc;
    if (p.s >= p.end) {
        *out = NULL;
        return 0;
    }
    if ((rc = parse_value(&p, 0, out)))
        return rc;
    if ((rc = skip_ws(&p)))
        return rc;
    if (p.s < p.end)
        return jerr(&p, "unexpected data after the top-level value");
    return 0;
}
