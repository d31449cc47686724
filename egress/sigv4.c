/* AWS SigV4: canonical request -> string to sign -> HMAC chain. Follows the published spec
 * and the aws-sig-v4-test-suite; S3 differs only in path encoding/normalization and in always
 * signing x-amz-content-sha256. */
#include "egress/sigv4.h"

#include "config/codec.h"
#include "config/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ALGORITHM "AWS4-HMAC-SHA256"

void vg_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32) {
        /* Only fails when libcrypto itself is broken; an all-zero hash never verifies. */
        memset(out, '0', 64);
        out[64] = '\0';
        return;
    }
    vg_hex_encode(md, 32, out);
}

static int hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                       unsigned char out[32])
{
    unsigned int n = 0;
    if (key_len > INT32_MAX || !HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) ||
        n != 32)
        return VG_EIO;
    return 0;
}

/* ---- path ---------------------------------------------------------------------------- */

struct seg {
    const char *p;
    size_t n;
};

/* Removes empty and "." segments and resolves ".." (generic SigV4 normalization). Writes the
 * kept segments into segs (capacity >= number of '/' + 1) and whether a trailing '/' stays. */
static size_t normalize_segments(const char *path, struct seg *segs, bool *trailing)
{
    size_t n = 0;
    bool last_dir = false;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p) {
            last_dir = true;
            break;
        }
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        last_dir = false;
        if (len == 1 && p[0] == '.') {
            last_dir = true;
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (n)
                n--;
            last_dir = true;
        } else {
            segs[n].p = p;
            segs[n].n = len;
            n++;
        }
        p += len;
    }
    *trailing = last_dir && n > 0;
    return n;
}

static int build_paths(const struct vg_sigv4_request *req, struct vg_buf *wire,
                       struct vg_buf *canon)
{
    const char *path = req->path && *req->path ? req->path : "/";
    int rc;
    if (path[0] != '/')
        return VG_EINVAL;

    if (req->s3) {
        /* S3: one encoding, no normalization ("a//b" and "./" are distinct keys). */
        rc = req->path_is_encoded ? vg_buf_puts(wire, path) : vg_url_encode(path, true, wire);
        if (!rc)
            rc = vg_buf_append(canon, wire->data, wire->len);
        return rc;
    }

    size_t cap = 1;
    for (const char *p = path; *p; p++)
        cap += *p == '/';
    struct seg *segs = calloc(cap, sizeof(*segs));
    if (!segs)
        return VG_ENOMEM;
    bool trailing = false;
    size_t n = normalize_segments(path, segs, &trailing);

    /* The normalized path in wire form: each segment encoded once (unless already encoded). */
    struct vg_buf norm;
    vg_buf_init(&norm);
    rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = vg_buf_puts(&norm, "/");
        if (!rc)
            rc = req->path_is_encoded ? vg_buf_append(&norm, segs[i].p, segs[i].n)
                                      : vg_url_encode_n(segs[i].p, segs[i].n, false, &norm);
    }
    if (!rc && (n == 0 || trailing))
        rc = vg_buf_puts(&norm, "/");
    if (rc)
        goto out;
    /* The wire carries what the caller gave when already encoded; else the normalized form. */
    rc = req->path_is_encoded ? vg_buf_puts(wire, path) : vg_buf_append(wire, norm.data, norm.len);
    /* Generic services encode the wire path once more for the canonical request. */
    if (!rc)
        rc = vg_url_encode(norm.data, true, canon);
out:
    vg_buf_free(&norm);
    free(segs);
    return rc;
}

/* ---- query --------------------------------------------------------------------------- */

struct qparam {
    char *key;
    char *val;
};

struct qlist {
    struct qparam *v;
    size_t n, cap;
};

static void qlist_free(struct qlist *q)
{
    for (size_t i = 0; i < q->n; i++) {
        free(q->v[i].key);
        free(q->v[i].val);
    }
    free(q->v);
    q->v = NULL;
    q->n = q->cap = 0;
}

/* Takes ownership of key and val (freed on failure). */
static int qlist_push(struct qlist *q, char *key, char *val)
{
    if (!key || !val) {
        free(key);
        free(val);
        return VG_ENOMEM;
    }
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 8;
        struct qparam *v = realloc(q->v, cap * sizeof(*v));
        if (!v) {
            free(key);
            free(val);
            return VG_ENOMEM;
        }
        q->v = v;
        q->cap = cap;
    }
    q->v[q->n].key = key;
    q->v[q->n].val = val;
    q->n++;
    return 0;
}

/* Decodes then encodes s[0..n) so encoded and raw input canonicalize alike. */
static char *reencode(const char *s, size_t n)
{
    struct vg_buf dec, enc;
    vg_buf_init(&dec);
    vg_buf_init(&enc);
    char *res = NULL;
    if (vg_url_decode_n(s, n, false, &dec) == 0 &&
        vg_url_encode_n(dec.data ? dec.data : "", dec.len, false, &enc) == 0)
        res = vg_buf_steal(&enc);
    vg_buf_free(&dec);
    vg_buf_free(&enc);
    return res;
}

static int parse_query(const char *query, struct qlist *q)
{
    const char *p = query ? query : "";
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > 0) {
            const char *eq = memchr(p, '=', len);
            size_t klen = eq ? (size_t)(eq - p) : len;
            const char *v = eq ? eq + 1 : p + len;
            size_t vlen = eq ? len - klen - 1 : 0;
            int rc = qlist_push(q, reencode(p, klen), reencode(v, vlen));
            if (rc)
                return rc;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return 0;
}

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->val, y->val);
}

static int join_query(struct qlist *q, struct vg_buf *out)
{
    if (q->n)
        qsort(q->v, q->n, sizeof(*q->v), qparam_cmp);
    for (size_t i = 0; i < q->n; i++) {
        int rc = vg_buf_printf(out, "%s%s=%s", i ? "&" : "", q->v[i].key, q->v[i].val);
        if (rc)
            return rc;
    }
    if (!out->data)
        return vg_buf_puts(out, "");
    return 0;
}

/* ---- headers ------------------------------------------------------------------------- */

struct hdr {
    char *name; /* lowercase */
    struct vg_buf value;
    bool generated;
};

struct hlist {
    struct hdr *v;
    size_t n, cap;
};

static void hlist_free(struct hlist *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].name);
        vg_buf_free(&h->v[i].value);
    }
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trims and folds every whitespace run (including obsolete line folding) into one space. */
static int append_trimmed(struct vg_buf *out, const char *v)
{
    while (is_ws(*v))
        v++;
    bool pending_space = false;
    for (; *v; v++) {
        if (is_ws(*v)) {
            pending_space = true;
            continue;
        }
        int rc = 0;
        if (pending_space)
            rc = vg_buf_puts(out, " ");
        pending_space = false;
        if (!rc)
            rc = vg_buf_append(out, v, 1);
        if (rc)
            return rc;
    }
    return out->data ? 0 : vg_buf_puts(out, "");
}

static struct hdr *hlist_find(struct hlist *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->v[i].name, name) == 0)
            return &h->v[i];
    return NULL;
}

static bool valid_header_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 32 || c >= 127 || c == ':')
            return false;
    }
    return true;
}

static int hlist_add(struct hlist *h, const char *name, const char *value, bool generated)
{
    if (!name || !value || !valid_header_name(name))
        return VG_EINVAL;
    char *lname = vg_strdup(name);
    if (!lname)
        return VG_ENOMEM;
    for (char *p = lname; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');

    struct vg_buf val;
    vg_buf_init(&val);
    int rc = append_trimmed(&val, value);
    if (rc)
        goto out;

    struct hdr *ex = hlist_find(h, lname);
    if (ex && ex->generated) {
        /* A caller may repeat a header we generate, but not contradict it. */
        rc = strcmp(ex->value.data, val.data) == 0 ? 0 : VG_EINVAL;
        goto out;
    }
    if (ex) {
        rc = vg_buf_puts(&ex->value, ",");
        if (!rc)
            rc = vg_buf_append(&ex->value, val.data, val.len);
        goto out;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        struct hdr *v = realloc(h->v, cap * sizeof(*v));
        if (!v) {
            rc = VG_ENOMEM;
            goto out;
        }
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n].name = lname;
    h->v[h->n].value = val;
    h->v[h->n].generated = generated;
    h->n++;
    return 0;
out:
    free(lname);
    vg_buf_free(&val);
    return rc;
}

static int hdr_cmp(const void *a, const void *b)
{
    const struct hdr *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* ---- signing ------------------------------------------------------------------------- */

void vg_sigv4_result_free(struct vg_sigv4_result *r)
{
    if (!r)
        return;
    free(r->authorization);
    free(r->amz_date);
    if (r->canonical_request)
        OPENSSL_cleanse(r->canonical_request, strlen(r->canonical_request));
    free(r->canonical_request);
    free(r->string_to_sign);
    free(r->canonical_uri);
    free(r->canonical_query);
    free(r->signed_headers);
    memset(r, 0, sizeof(*r));
}

static bool nonempty(const char *s)
{
    return s && *s;
}

static bool valid_scope_part(const char *s)
{
    return nonempty(s) && !strchr(s, '/') && !strpbrk(s, " \r\n");
}

static int check_inputs(const struct vg_sigv4_request *req, const struct vg_sigv4_creds *creds)
{
    if (!req || !creds || !nonempty(req->method) || !nonempty(req->host) ||
        !nonempty(req->payload_sha256) || (req->n_headers && !req->headers))
        return VG_EINVAL;
    if (!nonempty(creds->access_key_id) || !creds->secret_access_key ||
        !valid_scope_part(creds->region) || !valid_scope_part(creds->service))
        return VG_EINVAL;
    if (strpbrk(req->method, " \r\n") || strpbrk(req->payload_sha256, " \r\n") ||
        strpbrk(req->host, " \t\r\n/?#"))
        return VG_EINVAL;
    return 0;
}

static int signing_key(const struct vg_sigv4_creds *creds, const char *date8, unsigned char key[32])
{
    struct vg_buf k;
    vg_buf_init(&k);
    int rc = vg_buf_printf(&k, "AWS4%s", creds->secret_access_key);
    unsigned char a[32], b[32];
    if (!rc)
        rc = hmac_sha256(k.data, k.len, date8, strlen(date8), a);
    if (!rc)
        rc = hmac_sha256(a, 32, creds->region, strlen(creds->region), b);
    if (!rc)
        rc = hmac_sha256(b, 32, creds->service, strlen(creds->service), a);
    if (!rc)
        rc = hmac_sha256(a, 32, "aws4_request", 12, key);
    if (k.data)
        OPENSSL_cleanse(k.data, k.len);
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(b, sizeof(b));
    vg_buf_free(&k);
    return rc;
}

static bool is_auth_param(const char *key)
{
    static const char *const names[] = {"Algorithm",     "Credential", "Date",          "Expires",
                                        "SignedHeaders", "Signature",  "Security-Token"};
    if (strncasecmp(key, "X-Amz-", 6) != 0)
        return false;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(key + 6, names[i]) == 0)
            return true;
    return false;
}

/* expires == 0: header signing; else query-string presigning. */
static int sign_common(const struct vg_sigv4_request *req, const struct vg_sigv4_creds *creds,
                       time_t now_epoch, unsigned expires, struct vg_sigv4_result *out)
{
    struct vg_buf wire, cpath, query, creq, sts, shdrs, tmp, auth;
    struct hlist hl = {0};
    struct qlist ql = {0};
    char amz_date[17], date8[9];
    unsigned char key[32], sig[32];
    bool presign = expires > 0;
    int rc;

    vg_buf_init(&wire);
    vg_buf_init(&cpath);
    vg_buf_init(&query);
    vg_buf_init(&creq);
    vg_buf_init(&sts);
    vg_buf_init(&shdrs);
    vg_buf_init(&tmp);
    vg_buf_init(&auth);
    if (!out)
        return VG_EINVAL;
    memset(out, 0, sizeof(*out));
    if ((rc = check_inputs(req, creds)))
        goto out;

    struct tm tm;
    if (!gmtime_r(&now_epoch, &tm) || tm.tm_year + 1900 < 1970 || tm.tm_year + 1900 > 9999) {
        rc = VG_EINVAL;
        goto out;
    }
    strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
    memcpy(date8, amz_date, 8);
    date8[8] = '\0';

    if ((rc = build_paths(req, &wire, &cpath)))
        goto out;

    /* Headers: generated ones first so caller duplicates can be checked against them. */
    rc = hlist_add(&hl, "host", req->host, true);
    if (!rc && !presign)
        rc = hlist_add(&hl, "x-amz-date", amz_date, true);
    if (!rc && !presign && req->s3)
        rc = hlist_add(&hl, "x-amz-content-sha256", req->payload_sha256, true);
    if (!rc && !presign && creds->session_token)
        rc = hlist_add(&hl, "x-amz-security-token", creds->session_token, true);
    for (size_t i = 0; !rc && i < req->n_headers; i++)
        rc = hlist_add(&hl, req->headers[i].name, req->headers[i].value, false);
    if (rc)
        goto out;
    qsort(hl.v, hl.n, sizeof(*hl.v), hdr_cmp);
    for (size_t i = 0; !rc && i < hl.n; i++)
        rc = vg_buf_printf(&shdrs, "%s%s", i ? ";" : "", hl.v[i].name);
    if (rc)
        goto out;

    if ((rc = parse_query(req->query, &ql)))
        goto out;
    if (presign) {
        /* The caller's query must not carry (or fake) the authentication parameters. */
        for (size_t i = 0; i < ql.n; i++) {
            if (is_auth_param(ql.v[i].key)) {
                rc = VG_EINVAL;
                goto out;
            }
        }
        vg_buf_reset(&tmp);
        rc = vg_buf_printf(&tmp, "%s/%s/%s/%s/aws4_request", creds->access_key_id, date8,
                           creds->region, creds->service);
        if (!rc)
            rc = qlist_push(&ql, vg_strdup("X-Amz-Algorithm"), vg_strdup(ALGORITHM));
        if (!rc)
            rc = qlist_push(&ql, vg_strdup("X-Amz-Credential"), reencode(tmp.data, tmp.len));
        if (!rc)
            rc = qlist_push(&ql, vg_strdup("X-Amz-Date"), vg_strdup(amz_date));
        if (!rc)
            rc = qlist_push(&ql, vg_strdup("X-Amz-Expires"), vg_asprintf("%u", expires));
        if (!rc && creds->session_token)
            rc = qlist_push(&ql, vg_strdup("X-Amz-Security-Token"),
                            reencode(creds->session_token, strlen(creds->session_token)));
        if (!rc)
            rc = qlist_push(&ql, vg_strdup("X-Amz-SignedHeaders"), reencode(shdrs.data, shdrs.len));
        if (rc)
            goto out;
    }
    if ((rc = join_query(&ql, &query)))
        goto out;

    rc = vg_buf_printf(&creq, "%s\n%s\n%s\n", req->method, cpath.data, query.data);
    for (size_t i = 0; !rc && i < hl.n; i++)
        rc = vg_buf_printf(&creq, "%s:%s\n", hl.v[i].name, hl.v[i].value.data);
    if (!rc)
        rc = vg_buf_printf(&creq, "\n%s\n%s", shdrs.data, req->payload_sha256);
    if (rc)
        goto out;

    char creq_hash[65];
    vg_sha256_hex(creq.data, creq.len, creq_hash);
    rc = vg_buf_printf(&sts, ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, date8,
                       creds->region, creds->service, creq_hash);
    if (rc)
        goto out;

    if ((rc = signing_key(creds, date8, key)))
        goto out;
    rc = hmac_sha256(key, sizeof(key), sts.data, sts.len, sig);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc)
        goto out;
    vg_hex_encode(sig, 32, out->signature);

    if (!presign) {
        rc = vg_buf_printf(&auth,
                           ALGORITHM " Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
                                     "Signature=%s",
                           creds->access_key_id, date8, creds->region, creds->service, shdrs.data,
                           out->signature);
        if (rc)
            goto out;
        out->authorization = vg_buf_steal(&auth);
    }
    out->amz_date = vg_strdup(amz_date);
    out->canonical_request = vg_buf_steal(&creq);
    out->string_to_sign = vg_buf_steal(&sts);
    out->canonical_uri = vg_buf_steal(&wire);
    out->canonical_query = vg_buf_steal(&query);
    out->signed_headers = vg_buf_steal(&shdrs);
    if ((!presign && !out->authorization) || !out->amz_date || !out->canonical_request ||
        !out->string_to_sign || !out->canonical_uri || !out->canonical_query ||
        !out->signed_headers)
        rc = VG_ENOMEM;
out:
    if (rc)
        vg_sigv4_result_free(out);
    if (creq.data)
        OPENSSL_cleanse(creq.data, creq.len);
    hlist_free(&hl);
    qlist_free(&ql);
    vg_buf_free(&wire);
    vg_buf_free(&cpath);
    vg_buf_free(&query);
    vg_buf_free(&creq);
    vg_buf_free(&sts);
    vg_buf_free(&shdrs);
    vg_buf_free(&tmp);
    vg_buf_free(&auth);
    return rc;
}

int vg_sigv4_sign(const struct vg_sigv4_request *req, const struct vg_sigv4_creds *creds,
                  time_t now_epoch, struct vg_sigv4_result *out)
{
    return sign_common(req, creds, now_epoch, 0, out);
}

int vg_sigv4_presign(const struct vg_sigv4_request *req, const struct vg_sigv4_creds *creds,
                     time_t now_epoch, unsigned expires, struct vg_sigv4_result *out)
{
    if (out)
        memset(out, 0, sizeof(*out));
    if (expires < 1 || expires > VG_SIGV4_MAX_EXPIRES)
        return VG_EINVAL;
    return sign_common(req, creds, now_epoch, expires, out);
}

int vg_sigv4_presign_url(const char *scheme, const struct vg_sigv4_request *req,
                         const struct vg_sigv4_creds *creds, time_t now_epoch, unsigned expires,
                         char **out_url)
{
    if (!out_url)
        return VG_EINVAL;
    *out_url = NULL;
    if (!nonempty(scheme) || strpbrk(scheme, ":/?# "))
        return VG_EINVAL;
    struct vg_sigv4_result r;
    int rc = vg_sigv4_presign(req, creds, now_epoch, expires, &r);
    if (rc)
        return rc;
    *out_url = vg_asprintf("%s://%s%s?%s&X-Amz-Signature=%s", scheme, req->host, r.canonical_uri,
                           r.canonical_query, r.signature);
    vg_sigv4_result_free(&r);
    return *out_url ? 0 : VG_ENOMEM;
}
