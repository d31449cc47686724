/* API keys: the config stores only "sha256:<hex>" of the key; requests carry the key itself. */
#include "engine/http/http_int.h"
#include "config/codec.h"
#include "config/error.h"
#include "config/log.h"
#include "engine/http/jwt.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

int vg__http_auth_parse_hash(const char *s, unsigned char out[32])
{
    if (!s || strncasecmp(s, "sha256:", 7) != 0 || strlen(s + 7) != 64)
        return VG_ECONFIG;
    return vg_hex_decode(s + 7, out, 32) ? VG_ECONFIG : 0;
}

static int sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) || n != 32)
        return VG_EFATAL;
    return 0;
}

/* The token of an "Authorization: Bearer TOKEN" value, surrounding blanks removed. */
static const char *bearer(const char *authorization, size_t *len)
{
    if (!authorization)
        return NULL;
    const char *p = authorization;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return NULL;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    *len = strlen(p);
    while (*len > 0 && (p[*len - 1] == ' ' || p[*len - 1] == '\t'))
        (*len)--;
    return *len ? p : NULL;
}

bool vg__http_auth_check(const unsigned char hash[32], const char *authorization)
{
    size_t len;
    const char *p = bearer(authorization, &len);
    if (!p)
        return false;
    /* Comparing digests keeps the compare constant-time and independent of the key's length. */
    unsigned char got[32];
    if (sha256(p, len, got) != 0)
        return false;
    bool ok = CRYPTO_memcmp(got, hash, 32) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return ok;
}

bool vg__http_authorized(struct vg_http_server *s, const char *authorization)
{
    if (s->has_key && vg__http_auth_check(s->key_hash, authorization))
        return true;
    size_t len;
    const char *p = s->jwt ? bearer(authorization, &len) : NULL;
    /* a JWT is header.payload.signature; vigil's own keys never contain a '.' */
    if (!p || !memchr(p, '.', len) || len > VG_JWT_MAX_TOKEN)
        return false;
    char *token = vg_strndup(p, len), err[256];
    int rc = token ? vg_jwt_verify(token, s->jwt, s->jwt_subject, s->jwt_issuer,
                                   (int64_t)time(NULL), err, sizeof(err))
                   : VG_ENOMEM;
    if (rc)
        vg_log(VG_LOG_DEBUG, LOG_COMP, "JWT refused: %s", rc == VG_EAUTH ? err : vg_strerror(rc));
    free(token);
    return rc == 0;
}

static void hex_hash(const unsigned char d[32], char *hash)
{
    memcpy(hash, "sha256:", 7);
    vg_hex_encode(d, 32, hash + 7);
}

int vg_http_apikey_hash(const char *key, char *hash)
{
    unsigned char d[32];
    int rc = sha256(key, strlen(key), d);
    if (rc == 0)
        hex_hash(d, hash);
    return rc;
}

int vg_http_apikey_generate(char *key, char *hash)
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[33] = {0}; /* one pad byte makes the 3-byte grouping even */
    if (RAND_bytes(raw, 32) != 1)
        return VG_EFATAL;
    size_t o = 0;
    for (size_t i = 0; i < 33; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        char q[4] = {b64url[v >> 18 & 63], b64url[v >> 12 & 63], b64url[v >> 6 & 63],
                     b64url[v & 63]};
        for (int k = 0; k < 4 && o < VG_HTTP_APIKEY_LEN; k++)
            key[o++] = q[k];
    }
    key[o] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
    return vg_http_apikey_hash(key, hash);
}
