/* JWT bearer tokens for Authentication.MonitorApiKey (see jwt.h): signature first, with the
 * configured public key only, then the claims dotnet-monitor checks. */
#include "engine/http/jwt.h"

#include "config/error.h"
#include "config/util.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum key_kind { KEY_EC, KEY_RSA };

struct vg_jwt_key {
    EVP_PKEY *pkey;
    enum key_kind kind;
    size_t coord; /* EC: bytes per coordinate (32, 48, 66) */
};

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

void vg_jwt_key_free(struct vg_jwt_key *key)
{
    if (!key)
        return;
    EVP_PKEY_free(key->pkey);
    free(key);
}

/* A member of a JSON object by name in any case (.NET's JWK serialization writes "Kty", "X"). */
static json_t *member(json_t *obj, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (strcasecmp(k, name) == 0)
            return v;
    }
    return NULL;
}

/* A base64url member decoded into b; false when absent, not a string or not base64url. */
static bool b64_member(json_t *obj, const char *name, struct vg_buf *b)
{
    const char *s = json_string_value(member(obj, name));
    vg_buf_reset(b);
    return s && vg_base64url_decode(s, b) == 0 && b->len > 0;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
    EVP_PKEY *pkey = NULL;
    if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    if (pkey) {
        /* an EC point off the curve (invalid-curve attacks) or a degenerate RSA key */
        EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!check || EVP_PKEY_public_check(check) != 1) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
        EVP_PKEY_CTX_free(check);
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static int import_ec(json_t *jwk, struct vg_jwt_key *k, char *err, size_t errlen)
{
    const char *crv = json_string_value(member(jwk, "crv"));
    const char *group = NULL;
    if (crv && strcasecmp(crv, "P-256") == 0)
        group = "prime256v1", k->coord = 32;
    else if (crv && strcasecmp(crv, "P-384") == 0)
        group = "secp384r1", k->coord = 48;
    else if (crv && strcasecmp(crv, "P-521") == 0)
        group = "secp521r1", k->coord = 66;
    else
        return fail(err, errlen, VG_ECONFIG, "EC key: crv must be P-256, P-384 or P-521");
    struct vg_buf x, y, pt;
    vg_buf_init(&x);
    vg_buf_init(&y);
    vg_buf_init(&pt);
    int rc = 0;
    OSSL_PARAM_BLD *bld = NULL;
    if (!b64_member(jwk, "x", &x) || !b64_member(jwk, "y", &y) || x.len != k->coord ||
        y.len != k->coord) {
        rc = fail(err, errlen, VG_ECONFIG, "EC key: x and y must be base64url, %zu bytes each",
                  k->coord);
        goto out;
    }
    unsigned char tag = 4; /* uncompressed point */
    if (vg_buf_append(&pt, &tag, 1) || vg_buf_append(&pt, x.data, x.len) ||
        vg_buf_append(&pt, y.data, y.len) || !(bld = OSSL_PARAM_BLD_new()) ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt.data, pt.len)) {
        rc = VG_ENOMEM;
        goto out;
    }
    if (!(k->pkey = from_params("EC", bld)))
        rc = fail(err, errlen, VG_ECONFIG, "EC key: the point (x, y) is not on the curve %s", crv);
out:
    OSSL_PARAM_BLD_free(bld);
    vg_buf_free(&x);
    vg_buf_free(&y);
    vg_buf_free(&pt);
    return rc;
}

static int import_rsa(json_t *jwk, struct vg_jwt_key *k, char *err, size_t errlen)
{
    struct vg_buf n, e;
    vg_buf_init(&n);
    vg_buf_init(&e);
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    int rc = 0;
    if (!b64_member(jwk, "n", &n) || !b64_member(jwk, "e", &e)) {
        rc = fail(err, errlen, VG_ECONFIG, "RSA key: n and e must be base64url");
        goto out;
    }
    if (!(bn = BN_bin2bn((const unsigned char *)n.data, (int)n.len, NULL)) ||
        !(be = BN_bin2bn((const unsigned char *)e.data, (int)e.len, NULL)) ||
        !(bld = OSSL_PARAM_BLD_new()) || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be)) {
        rc = VG_ENOMEM;
        goto out;
    }
    /* IdentityModel verifies with RSA keys of 1024 bits and more */
    if (BN_num_bits(bn) < 1024) {
        rc = fail(err, errlen, VG_ECONFIG, "RSA key: %d bits; at least 1024 are needed",
                  BN_num_bits(bn));
        goto out;
    }
    if (!(k->pkey = from_params("RSA", bld)))
        rc = fail(err, errlen, VG_ECONFIG, "RSA key: n and e do not form a public key");
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    vg_buf_free(&n);
    vg_buf_free(&e);
    return rc;
}

int vg_jwt_key_parse(const char *public_key_b64url, struct vg_jwt_key **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    struct vg_buf raw;
    vg_buf_init(&raw);
    json_t *jwk = NULL;
    int rc = 0;
    struct vg_jwt_key *k = calloc(1, sizeof(*k));
    if (!k)
        return VG_ENOMEM;
    if (!public_key_b64url || vg_base64url_decode(public_key_b64url, &raw) != 0 || !raw.len) {
        rc = fail(err, errlen, VG_ECONFIG, "PublicKey is not base64url");
        goto out;
    }
    if (!(jwk = json_loadb(raw.data, raw.len, JSON_REJECT_DUPLICATES, NULL)) ||
        !json_is_object(jwk)) {
        rc = fail(err, errlen, VG_ECONFIG, "PublicKey is not a JSON Web Key (a JSON object)");
        goto out;
    }
    const char *kty = json_string_value(member(jwk, "kty"));
    if (kty && strcasecmp(kty, "EC") == 0) {
        k->kind = KEY_EC;
        rc = import_ec(jwk, k, err, errlen);
    } else if (kty && strcasecmp(kty, "RSA") == 0) {
        k->kind = KEY_RSA;
        rc = import_rsa(jwk, k, err, errlen);
    } else {
        rc = fail(err, errlen, VG_ECONFIG, "PublicKey: kty must be EC or RSA");
    }
out:
    json_decref(jwk);
    vg_buf_free(&raw);
    if (rc)
        vg_jwt_key_free(k);
    else
        *out = k;
    return rc;
}

/* ---------- verification ---------- */

struct alg {
    const char *name;
    enum key_kind kind;
    size_t coord; /* EC only: the curve the algorithm implies */
    const EVP_MD *(*md)(void);
};

/* The JWS names and the XML-DSig URIs IdentityModel also accepts for them. */
static const struct alg *find_alg(const char *name)
{
    static const struct alg algs[] = {
        {"ES256", KEY_EC, 32, EVP_sha256},
        {"ES384", KEY_EC, 48, EVP_sha384},
        {"ES512", KEY_EC, 66, EVP_sha512},
        {"RS256", KEY_RSA, 0, EVP_sha256},
        {"RS384", KEY_RSA, 0, EVP_sha384},
        {"RS512", KEY_RSA, 0, EVP_sha512},
        {"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", KEY_EC, 32, EVP_sha256},
        {"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384", KEY_EC, 48, EVP_sha384},
        {"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512", KEY_EC, 66, EVP_sha512},
        {"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", KEY_RSA, 0, EVP_sha256},
        {"http://www.w3.org/2001/04/xmldsig-more#rsa-sha384", KEY_RSA, 0, EVP_sha384},
        {"http://www.w3.org/2001/04/xmldsig-more#rsa-sha512", KEY_RSA, 0, EVP_sha512},
    };
    for (size_t i = 0; name && i < sizeof(algs) / sizeof(algs[0]); i++)
        if (strcmp(name, algs[i].name) == 0)
            return &algs[i];
    return NULL;
}

/* A JWS ECDSA signature is R || S; OpenSSL verifies the DER form. */
static int ecdsa_der(const struct vg_buf *raw, size_t coord, unsigned char **der, int *der_len)
{
    *der = NULL;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn((const unsigned char *)raw->data, (int)coord, NULL);
    BIGNUM *s = BN_bin2bn((const unsigned char *)raw->data + coord, (int)coord, NULL);
    if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return VG_ENOMEM;
    }
    *der_len = i2d_ECDSA_SIG(sig, der);
    ECDSA_SIG_free(sig);
    return *der_len > 0 ? 0 : VG_ENOMEM;
}

static int check_signature(const struct vg_jwt_key *key, const struct alg *alg, const char *data,
                           size_t data_len, const struct vg_buf *sig, char *err, size_t errlen)
{
    if (alg->kind != key->kind || (alg->kind == KEY_EC && alg->coord != key->coord))
        return fail(err, errlen, VG_EAUTH, "the token's algorithm %s does not match the key",
                    alg->name);
    const unsigned char *s = (const unsigned char *)sig->data;
    size_t slen = sig->len;
    unsigned char *der = NULL;
    int der_len = 0, rc;
    if (alg->kind == KEY_EC) {
        if (sig->len != 2 * key->coord)
            return fail(err, errlen, VG_EAUTH, "bad signature length");
        if ((rc = ecdsa_der(sig, key->coord, &der, &der_len)))
            return rc;
        s = der;
        slen = (size_t)der_len;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestVerifyInit(md, NULL, alg->md(), NULL, key->pkey) == 1 &&
             EVP_DigestVerify(md, s, slen, (const unsigned char *)data, data_len) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    return ok ? 0 : fail(err, errlen, VG_EAUTH, "signature does not verify with the key");
}

/* A base64url segment decoded as a JSON object. */
static json_t *segment_json(const char *seg, size_t len)
{
    char *copy = vg_strndup(seg, len);
    struct vg_buf b;
    vg_buf_init(&b);
    json_t *j = NULL;
    if (copy && vg_base64url_decode(copy, &b) == 0 && b.len)
        j = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    vg_buf_free(&b);
    free(copy);
    return j;
}

/* A NumericDate: a JSON number or, as dotnet-monitor's generatekey writes `exp`, a string of
 * digits. false when absent or malformed. */
static bool numeric_date(json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        *out = (int64_t)json_real_value(v);
        return true;
    }
    const char *s = json_string_value(v);
    if (!s || !*s || !isdigit((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (*end || errno)
        return false;
    *out = n;
    return true;
}

static bool audience_ok(const char *aud)
{
    /* IdentityModel ignores one trailing slash when comparing audiences */
    size_t n = strlen(aud), want = strlen(VG_JWT_AUDIENCE);
    if (n == want + 1 && aud[want] == '/')
        n--;
    return n == want && strncmp(aud, VG_JWT_AUDIENCE, want) == 0;
}

static int check_claims(json_t *p, const char *subject, const char *issuer, int64_t now, char *err,
                        size_t errlen)
{
    json_t *aud = json_object_get(p, "aud");
    bool aud_ok = json_is_string(aud) && audience_ok(json_string_value(aud));
    for (size_t i = 0; json_is_array(aud) && i < json_array_size(aud) && !aud_ok; i++) {
        const char *a = json_string_value(json_array_get(aud, i));
        aud_ok = a && audience_ok(a);
    }
    if (!aud_ok)
        return fail(err, errlen, VG_EAUTH, "the token's audience (aud) is not %s", VG_JWT_AUDIENCE);
    const char *iss = json_string_value(json_object_get(p, "iss"));
    if (!iss || strcmp(iss, issuer ? issuer : VG_JWT_ISSUER) != 0)
        return fail(err, errlen, VG_EAUTH, "the token's issuer (iss) is not the configured one");
    int64_t exp, nbf;
    if (!numeric_date(json_object_get(p, "exp"), &exp))
        return fail(err, errlen, VG_EAUTH, "the token has no expiration time (exp)");
    if (now > exp + VG_JWT_CLOCK_SKEW_S)
        return fail(err, errlen, VG_EAUTH, "the token expired %lld s ago", (long long)(now - exp));
    json_t *nb = json_object_get(p, "nbf");
    if (nb && !numeric_date(nb, &nbf))
        return fail(err, errlen, VG_EAUTH, "the token's nbf is not a time");
    if (nb && now + VG_JWT_CLOCK_SKEW_S < nbf)
        return fail(err, errlen, VG_EAUTH, "the token is not valid yet (nbf)");
    const char *sub = json_string_value(json_object_get(p, "sub"));
    if (!sub || !subject || strcmp(sub, subject) != 0)
        return fail(err, errlen, VG_EAUTH, "the token's subject (sub) is not the configured one");
    return 0;
}

int vg_jwt_verify(const char *token, const struct vg_jwt_key *key, const char *subject,
                  const char *issuer, int64_t now, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!token || !key)
        return fail(err, errlen, VG_EAUTH, "no token");
    size_t len = strnlen(token, VG_JWT_MAX_TOKEN + 1);
    if (len > VG_JWT_MAX_TOKEN)
        return fail(err, errlen, VG_EAUTH, "token longer than %d bytes", VG_JWT_MAX_TOKEN);
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return fail(err, errlen, VG_EAUTH, "not a signed JWT (three base64url parts)");
    json_t *header = segment_json(token, (size_t)(d1 - token));
    json_t *payload = NULL;
    struct vg_buf sig;
    vg_buf_init(&sig);
    int rc;
    if (!header) {
        rc = fail(err, errlen, VG_EAUTH, "the token's header is not base64url JSON");
        goto out;
    }
    const char *alg_name = json_string_value(json_object_get(header, "alg"));
    const struct alg *alg = find_alg(alg_name);
    if (!alg) {
        /* none, HS*, PS*: dotnet-monitor accepts only public-key signatures */
        rc = fail(err, errlen, VG_EAUTH,
                  "algorithm %s%s%s is not accepted (ES256/384/512, "
                  "RS256/384/512 only)",
                  alg_name ? "\"" : "", alg_name ? alg_name : "(none given)", alg_name ? "\"" : "");
        goto out;
    }
    char *sig_text = vg_strndup(d2 + 1, len - (size_t)(d2 + 1 - token));
    rc = !sig_text ? VG_ENOMEM : vg_base64url_decode(sig_text, &sig) ? VG_EAUTH : 0;
    free(sig_text);
    if (rc || !sig.len) {
        rc = rc == VG_ENOMEM ? rc : fail(err, errlen, VG_EAUTH, "the token has no signature");
        goto out;
    }
    if ((rc = check_signature(key, alg, token, (size_t)(d2 - token), &sig, err, errlen)))
        goto out;
    if (!(payload = segment_json(d1 + 1, (size_t)(d2 - d1 - 1)))) {
        rc = fail(err, errlen, VG_EAUTH, "the token's payload is not base64url JSON");
        goto out;
    }
    rc = check_claims(payload, subject, issuer, now, err, errlen);
out:
    json_decref(header);
    json_decref(payload);
    vg_buf_free(&sig);
    return rc;
}

/* ---------- generatekey ---------- */

static int b64url_append(const void *data, size_t len, struct vg_buf *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = data;
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        char c[4] = {al[v >> 18 & 63], al[v >> 12 & 63], al[v >> 6 & 63], al[v & 63]};
        rc = vg_buf_append(out, c, i + 2 < len ? 4 : i + 1 < len ? 3 : 2);
    }
    return rc;
}

static int bn_b64url(const BIGNUM *bn, size_t len, struct vg_buf *out)
{
    unsigned char buf[66];
    if (len > sizeof(buf) || BN_bn2binpad(bn, buf, (int)len) != (int)len)
        return VG_EFATAL;
    return b64url_append(buf, len, out);
}

int vg_jwt_generate(int64_t now, int64_t expires_s, char **token, char **subject, char **public_key)
{
    *token = *subject = *public_key = NULL;
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    BIGNUM *x = NULL, *y = NULL;
    EVP_MD_CTX *md = NULL;
    unsigned char *der = NULL, raw[96], uuid[16];
    struct vg_buf jwk, tok, json;
    vg_buf_init(&jwk);
    vg_buf_init(&tok);
    vg_buf_init(&json);
    char sub[37];
    int rc = VG_EFATAL;
    if (!pkey || !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
        !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) || RAND_bytes(uuid, 16) != 1)
        goto out;
    uuid[6] = (uuid[6] & 0x0f) | 0x40; /* version 4 */
    uuid[8] = (uuid[8] & 0x3f) | 0x80; /* RFC 4122 variant */
    snprintf(sub, sizeof(sub),
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", uuid[0],
             uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7], uuid[8], uuid[9],
             uuid[10], uuid[11], uuid[12], uuid[13], uuid[14], uuid[15]);
    /* the JWK: member names as the JWK standard (and IdentityModel 8) write them */
    if ((rc = vg_buf_puts(&json, "{\"crv\":\"P-384\",\"kty\":\"EC\",\"x\":\"")) ||
        (rc = bn_b64url(x, 48, &json)) || (rc = vg_buf_puts(&json, "\",\"y\":\"")) ||
        (rc = bn_b64url(y, 48, &json)) || (rc = vg_buf_puts(&json, "\"}")) ||
        (rc = b64url_append(json.data, json.len, &jwk)))
        goto out;
    static const char header[] = "{\"alg\":\"ES384\",\"typ\":\"JWT\"}";
    vg_buf_reset(&json);
    if ((rc =
             vg_buf_printf(&json, "{\"aud\":\"%s\",\"exp\":\"%lld\",\"iss\":\"%s\",\"sub\":\"%s\"}",
                           VG_JWT_AUDIENCE, (long long)(now + expires_s), VG_JWT_ISSUER, sub)) ||
        (rc = b64url_append(header, strlen(header), &tok)) || (rc = vg_buf_puts(&tok, ".")) ||
        (rc = b64url_append(json.data, json.len, &tok)))
        goto out;
    size_t der_len = 0;
    rc = VG_EFATAL;
    if (!(md = EVP_MD_CTX_new()) || EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, pkey) != 1 ||
        EVP_DigestSign(md, NULL, &der_len, (const unsigned char *)tok.data, tok.len) != 1 ||
        !(der = OPENSSL_malloc(der_len)) ||
        EVP_DigestSign(md, der, &der_len, (const unsigned char *)tok.data, tok.len) != 1)
        goto out;
    /* DER -> the JWS form, R || S */
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    bool ok = sig && BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 48) == 48 &&
              BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 48, 48) == 48;
    ECDSA_SIG_free(sig);
    if (!ok)
        goto out;
    if ((rc = vg_buf_puts(&tok, ".")) || (rc = b64url_append(raw, sizeof(raw), &tok)))
        goto out;
    if (!(*subject = vg_strdup(sub))) {
        rc = VG_ENOMEM;
        goto out;
    }
    *token = vg_buf_steal(&tok);
    *public_key = vg_buf_steal(&jwk);
    rc = *token && *public_key ? 0 : VG_ENOMEM;
out:
    if (rc) {
        free(*token);
        free(*subject);
        free(*public_key);
        *token = *subject = *public_key = NULL;
    }
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    BN_free(x);
    BN_free(y);
    EVP_PKEY_free(pkey); /* the private key goes with it: only the token and public key stay */
    vg_buf_free(&jwk);
    vg_buf_free(&tok);
    vg_buf_free(&json);
    return rc;
}
