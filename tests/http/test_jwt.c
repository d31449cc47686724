/* JWT verification (engine/http/jwt.c) against tokens signed here with OpenSSL: every algorithm
 * dotnet-monitor accepts, and the refusals (wrong signature, expired, `none`, HMAC with the public
 * key as secret, wrong audience/issuer/subject, malformed input). Tokens made by dotnet-monitor's
 * documented procedure (.NET, IdentityModel) are checked by jwt_interop.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config/error.h"
#include "config/util.h"
#include "engine/http/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void b64url(const void *data, size_t len, struct vg_buf *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        char c[4] = {al[v >> 18 & 63], al[v >> 12 & 63], al[v >> 6 & 63], al[v & 63]};
        vg_buf_append(out, c, i + 2 < len ? 4 : i + 1 < len ? 3 : 2);
    }
}

struct kp {
    EVP_PKEY *pkey;
    char *jwk; /* base64url JSON Web Key, as generatekey prints it (.NET property names) */
    size_t coord;
};

static void bn_b64(const BIGNUM *bn, size_t pad, struct vg_buf *out)
{
    size_t n = pad ? pad : (size_t)BN_num_bytes(bn);
    unsigned char *buf = malloc(n);
    assert_int_equal(BN_bn2binpad(bn, buf, (int)n), (int)n);
    b64url(buf, n, out);
    free(buf);
}

static struct kp make_ec(const char *curve, size_t coord)
{
    struct kp k = {.coord = coord};
    k.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    assert_non_null(k.pkey);
    BIGNUM *x = NULL, *y = NULL;
    assert_true(EVP_PKEY_get_bn_param(k.pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x));
    assert_true(EVP_PKEY_get_bn_param(k.pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y));
    struct vg_buf bx, by, json;
    vg_buf_init(&bx);
    vg_buf_init(&by);
    vg_buf_init(&json);
    bn_b64(x, coord, &bx);
    bn_b64(y, coord, &by);
    const char *crv = coord == 32 ? "P-256" : coord == 48 ? "P-384" : "P-521";
    vg_buf_printf(&json,
                  "{\"AdditionalData\":{},\"Crv\":\"%s\",\"KeyOps\":[],\"Kty\":\"EC\",\"X\":\"%s\","
                  "\"X5c\":[],\"Y\":\"%s\",\"KeySize\":%zu,\"HasPrivateKey\":false}",
                  crv, bx.data, by.data, coord == 66 ? (size_t)521 : coord * 8);
    struct vg_buf enc;
    vg_buf_init(&enc);
    b64url(json.data, json.len, &enc);
    k.jwk = vg_buf_steal(&enc);
    BN_free(x);
    BN_free(y);
    vg_buf_free(&bx);
    vg_buf_free(&by);
    vg_buf_free(&json);
    return k;
}

static struct kp make_rsa(unsigned bits)
{
    struct kp k = {0};
    k.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    assert_non_null(k.pkey);
    BIGNUM *n = NULL, *e = NULL;
    assert_true(EVP_PKEY_get_bn_param(k.pkey, OSSL_PKEY_PARAM_RSA_N, &n));
    assert_true(EVP_PKEY_get_bn_param(k.pkey, OSSL_PKEY_PARAM_RSA_E, &e));
    struct vg_buf bn, be, json, enc;
    vg_buf_init(&bn);
    vg_buf_init(&be);
    vg_buf_init(&json);
    vg_buf_init(&enc);
    bn_b64(n, 0, &bn);
    bn_b64(e, 0, &be);
    vg_buf_printf(&json, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"}", bn.data, be.data);
    b64url(json.data, json.len, &enc);
    k.jwk = vg_buf_steal(&enc);
    BN_free(n);
    BN_free(e);
    vg_buf_free(&bn);
    vg_buf_free(&be);
    vg_buf_free(&json);
    return k;
}

static void kp_free(struct kp *k)
{
    EVP_PKEY_free(k->pkey);
    free(k->jwk);
}

static const char *md_name(const char *alg)
{
    return strstr(alg, "256") ? "SHA256" : strstr(alg, "384") ? "SHA384" : "SHA512";
}

/* header.payload.signature with `signer` (NULL: no signature, as alg none writes it). */
static char *sign(const char *header_json, const char *payload_json, const struct kp *signer,
                  const char *alg)
{
    struct vg_buf t;
    vg_buf_init(&t);
    b64url(header_json, strlen(header_json), &t);
    vg_buf_puts(&t, ".");
    b64url(payload_json, strlen(payload_json), &t);
    vg_buf_puts(&t, ".");
    if (signer) {
        size_t data_len = t.len - 1;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        size_t siglen = 0;
        assert_int_equal(
            EVP_DigestSignInit_ex(md, NULL, md_name(alg), NULL, NULL, signer->pkey, NULL), 1);
        assert_int_equal(EVP_DigestSign(md, NULL, &siglen, (unsigned char *)t.data, data_len), 1);
        unsigned char *sig = malloc(siglen);
        assert_int_equal(EVP_DigestSign(md, sig, &siglen, (unsigned char *)t.data, data_len), 1);
        EVP_MD_CTX_free(md);
        if (signer->coord) { /* DER -> R || S */
            const unsigned char *p = sig;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
            unsigned char raw[132];
            BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)signer->coord);
            BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + signer->coord, (int)signer->coord);
            b64url(raw, 2 * signer->coord, &t);
            ECDSA_SIG_free(es);
        } else {
            b64url(sig, siglen, &t);
        }
        free(sig);
    }
    return vg_buf_steal(&t);
}

#define SUB "ae5473b6-8dad-498d-b915-53b9c684000e"
#define NOW ((int64_t)1750000000)

/* dotnet-monitor's generatekey payload: exp is a string there. */
static char *payload(const char *aud, const char *iss, const char *sub, const char *exp_json)
{
    return vg_asprintf("{\"aud\":\"%s\",\"exp\":%s,\"iss\":\"%s\",\"sub\":\"%s\"}", aud, exp_json,
                       iss, sub);
}

static char *std_payload(void)
{
    return payload(VG_JWT_AUDIENCE, VG_JWT_ISSUER, SUB, "\"1750003600\"");
}

static int verify(const char *token, const struct kp *k)
{
    struct vg_jwt_key *key;
    char err[256];
    assert_int_equal(vg_jwt_key_parse(k->jwk, &key, err, sizeof(err)), 0);
    int rc = vg_jwt_verify(token, key, SUB, NULL, NOW, err, sizeof(err));
    if (rc)
        fprintf(stderr, "  refused: %s\n", err);
    vg_jwt_key_free(key);
    return rc;
}

static void test_every_algorithm(void **state)
{
    (void)state;
    static const struct {
        const char *alg, *curve;
        size_t coord;
    } ec[] = {{"ES256", "P-256", 32}, {"ES384", "P-384", 48}, {"ES512", "P-521", 66}};
    char *p = std_payload();
    for (size_t i = 0; i < 3; i++) {
        struct kp k = make_ec(ec[i].curve, ec[i].coord);
        char *h = vg_asprintf("{\"alg\":\"%s\",\"typ\":\"JWT\"}", ec[i].alg);
        char *t = sign(h, p, &k, ec[i].alg);
        assert_int_equal(verify(t, &k), 0);
        free(t);
        free(h);
        kp_free(&k);
    }
    struct kp r = make_rsa(2048);
    static const char *const rs[] = {"RS256", "RS384", "RS512"};
    for (size_t i = 0; i < 3; i++) {
        char *h = vg_asprintf("{\"alg\":\"%s\",\"typ\":\"JWT\"}", rs[i]);
        char *t = sign(h, p, &r, rs[i]);
        assert_int_equal(verify(t, &r), 0);
        free(t);
        free(h);
    }
    /* the XML-DSig name IdentityModel also accepts */
    char *t =
        sign("{\"alg\":\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"}", p, &r, "RS256");
    assert_int_equal(verify(t, &r), 0);
    free(t);
    kp_free(&r);
    free(p);
}

static void test_refusals(void **state)
{
    (void)state;
    struct kp k = make_ec("P-384", 48), other = make_ec("P-384", 48), p256 = make_ec("P-256", 32);
    const char *h = "{\"alg\":\"ES384\",\"typ\":\"JWT\"}";
    char *p = std_payload();
    char *good = sign(h, p, &k, "ES384");
    assert_int_equal(verify(good, &k), 0);

    /* wrong signature: another key's, or one flipped bit */
    char *t = sign(h, p, &other, "ES384");
    assert_int_equal(verify(t, &k), VG_EAUTH);
    free(t);
    t = strdup(good);
    size_t len = strlen(t);
    t[len - 5] = t[len - 5] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(t, &k), VG_EAUTH);
    free(t);
    /* a changed payload under the original signature */
    char *p2 = payload(VG_JWT_AUDIENCE, VG_JWT_ISSUER, "someone-else", "\"1750003600\"");
    char *t2 = sign(h, p2, &k, "ES384");
    const char *sig = strrchr(good, '.');
    char *mixed = vg_asprintf("%.*s%s", (int)(strrchr(t2, '.') - t2), t2, sig);
    assert_int_equal(verify(mixed, &k), VG_EAUTH);
    free(mixed);
    free(t2);
    free(p2);

    /* expired: beyond the 5 minutes of skew; within them it still passes, as in IdentityModel */
    p2 = payload(VG_JWT_AUDIENCE, VG_JWT_ISSUER, SUB, "1749999000");
    t = sign(h, p2, &k, "ES384");
    assert_int_equal(verify(t, &k), VG_EAUTH);
    free(t);
    free(p2);
    p2 = payload(VG_JWT_AUDIENCE, VG_JWT_ISSUER, SUB, "1749999800");
    t = sign(h, p2, &k, "ES384");
    assert_int_equal(verify(t, &k), 0);
    free(t);
    free(p2);
    /* no exp at all */
    t = sign(h,
             "{\"aud\":\"" VG_JWT_AUDIENCE "\",\"iss\":\"" VG_JWT_ISSUER "\",\"sub\":\"" SUB "\"}",
             &k, "ES384");
    assert_int_equal(verify(t, &k), VG_EAUTH);
    free(t);
    /* not valid yet */
    t = sign(h,
             "{\"aud\":\"" VG_JWT_AUDIENCE "\",\"iss\":\"" VG_JWT_ISSUER "\",\"sub\":\"" SUB
             "\",\"exp\":1750009999,\"nbf\":1750001000}",
             &k, "ES384");
    assert_int_equal(verify(t, &k), VG_EAUTH);
    free(t);

    /* alg none, with and without a signature part */
    t = sign("{\"alg\":\"none\",\"typ\":\"JWT\"}", p, NULL, NULL);
    assert_int_equal(verify(t, &k), VG_EAUTH);
    char *withsig = vg_asprintf("%s%s", t, sig + 1);
    assert_int_equal(verify(withsig, &k), VG_EAUTH);
    free(withsig);
    free(t);
    /* HS256 keyed with the public JWK text (algorithm confusion) */
    struct vg_buf hs;
    vg_buf_init(&hs);
    const char *hh = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    b64url(hh, strlen(hh), &hs);
    vg_buf_puts(&hs, ".");
    b64url(p, strlen(p), &hs);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), k.jwk, (int)strlen(k.jwk), (unsigned char *)hs.data, hs.len, mac, &maclen);
    vg_buf_puts(&hs, ".");
    b64url(mac, maclen, &hs);
    assert_int_equal(verify(hs.data, &k), VG_EAUTH);
    vg_buf_free(&hs);
    /* ES256 header with a P-384 key, and an ES256 token against a P-384 key */
    t = sign("{\"alg\":\"ES256\"}", p, &p256, "ES256");
    assert_int_equal(verify(t, &k), VG_EAUTH);
    free(t);

    /* claims: audience, issuer, subject */
    static const char *const bad[][3] = {
        {"https://example.com", VG_JWT_ISSUER, SUB},
        {VG_JWT_AUDIENCE, "https://evil.example", SUB},
        {VG_JWT_AUDIENCE, VG_JWT_ISSUER, "ae5473b6-8dad-498d-b915-53b9c684000f"},
        {VG_JWT_AUDIENCE, VG_JWT_ISSUER, ""},
    };
    for (size_t i = 0; i < 4; i++) {
        p2 = payload(bad[i][0], bad[i][1], bad[i][2], "\"1750003600\"");
        t = sign(h, p2, &k, "ES384");
        assert_int_equal(verify(t, &k), VG_EAUTH);
        free(t);
        free(p2);
    }
    /* an audience array and a trailing slash pass */
    t = sign(h,
             "{\"aud\":[\"x\",\"" VG_JWT_AUDIENCE "/\"],\"iss\":\"" VG_JWT_ISSUER
             "\",\"sub\":\"" SUB "\",\"exp\":1750003600}",
             &k, "ES384");
    assert_int_equal(verify(t, &k), 0);
    free(t);
    /* a configured Issuer replaces generatekey's */
    p2 = payload(VG_JWT_AUDIENCE, "https://issuer.example", SUB, "1750003600");
    t = sign(h, p2, &k, "ES384");
    struct vg_jwt_key *key;
    char err[256];
    assert_int_equal(vg_jwt_key_parse(k.jwk, &key, err, sizeof(err)), 0);
    assert_int_equal(vg_jwt_verify(t, key, SUB, "https://issuer.example", NOW, err, sizeof(err)),
                     0);
    assert_int_equal(vg_jwt_verify(t, key, SUB, NULL, NOW, err, sizeof(err)), VG_EAUTH);
    assert_non_null(strstr(err, "issuer"));
    free(t);
    free(p2);

    /* malformed: parts, encodings, sizes */
    static const char *const junk[] = {
        "", "abc", "a.b", "a.b.c.d.e", "...", "!!.??.**", "eyJhbGciOiJFUzM4NCJ9..", "e30.e30.AAAA"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        assert_int_equal(vg_jwt_verify(junk[i], key, SUB, NULL, NOW, err, sizeof(err)), VG_EAUTH);
    char *huge = malloc(VG_JWT_MAX_TOKEN + 2);
    memset(huge, 'a', VG_JWT_MAX_TOKEN + 1);
    huge[10] = huge[20] = '.';
    huge[VG_JWT_MAX_TOKEN + 1] = '\0';
    assert_int_equal(vg_jwt_verify(huge, key, SUB, NULL, NOW, err, sizeof(err)), VG_EAUTH);
    assert_non_null(strstr(err, "longer than"));
    free(huge);
    /* the error never quotes the token */
    assert_int_equal(vg_jwt_verify(good, key, "other", NULL, NOW, err, sizeof(err)), VG_EAUTH);
    assert_null(strstr(err, good + 10));
    vg_jwt_key_free(key);
    free(good);
    free(p);
    kp_free(&k);
    kp_free(&other);
    kp_free(&p256);
}

static void test_key_import_errors(void **state)
{
    (void)state;
    struct vg_jwt_key *key;
    char err[256];
    static const char *const bad[][2] = {
        {"!!!", "not base64url"},
        {"eyJrdHkiOiJvY3QifQ", "kty must be EC or RSA"},        /* {"kty":"oct"} */
        {"eyJrdHkiOiJFQyIsImNydiI6IlAtMTkyIn0", "crv must be"}, /* P-192 */
        {"WyJFQyJd", "JSON object"},                            /* ["EC"] */
    };
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(vg_jwt_key_parse(bad[i][0], &key, err, sizeof(err)), VG_ECONFIG);
        assert_non_null(strstr(err, bad[i][1]));
    }
    /* a point that is not on the curve */
    struct vg_buf json, enc, coord;
    vg_buf_init(&json);
    vg_buf_init(&enc);
    vg_buf_init(&coord);
    unsigned char one[32] = {0};
    one[31] = 1;
    b64url(one, 32, &coord);
    vg_buf_printf(&json, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", coord.data,
                  coord.data);
    b64url(json.data, json.len, &enc);
    assert_int_equal(vg_jwt_key_parse(enc.data, &key, err, sizeof(err)), VG_ECONFIG);
    assert_non_null(strstr(err, "not on the curve"));
    /* RSA under 1024 bits */
    struct kp small = make_rsa(768);
    assert_int_equal(vg_jwt_key_parse(small.jwk, &key, err, sizeof(err)), VG_ECONFIG);
    assert_non_null(strstr(err, "at least 1024"));
    kp_free(&small);
    vg_buf_free(&json);
    vg_buf_free(&enc);
    vg_buf_free(&coord);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_algorithm),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_key_import_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
