/* API keys: the config stores only "sha256:<hex>" of the key; requests carry the key itself. */
#include "engine/http/http_int.h"
#include "config/error.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int vg__http_auth_parse_hash(const char *s, unsigned char out[32])
{
    if (!s || strncasecmp(s, "sha256:", 7) != 0 || strlen(s + 7) != 64)
        return VG_ECONFIG;
    const char *h = s + 7;
    for (int i = 0; i < 32; i++) {
        int hi = hexval((unsigned char)h[2 * i]), lo = hexval((unsigned char)h[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return VG_ECONFIG;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static int sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) || n != 32)
        return VG_EFATAL;
    return 0;
}

bool vg__http_auth_check(const unsigned char hash[32], const char *authorization)
{
    if (!authorization)
        return false;
    const char *p = authorization;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return false;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t len = strlen(p);
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    if (len == 0)
        return false;
    /* Comparing digests keeps the compare constant-time and independent of the key's length. */
    unsigned char got[32];
    if (sha256(p, len, got) != 0)
        return false;
    bool ok = CRYPTO_memcmp(got, hash, 32) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return ok;
}

static void hex_hash(const unsigned char d[32], char *hash)
{
    static const char hx[] = "0123456789abcdef";
    memcpy(hash, "sha256:", 7);
    for (int i = 0; i < 32; i++) {
        hash[7 + 2 * i] = hx[d[i] >> 4];
        hash[8 + 2 * i] = hx[d[i] & 15];
    }
    hash[VG_HTTP_APIKEY_HASH_LEN] = '\0';
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
