/* libFuzzer target: JWT bearer tokens and JSON Web Keys (engine/http/jwt.c), both from outside:
 * the token from any client, the key from configuration. The input is split at the first NUL:
 * token, then (optionally) a key to import instead of the fixed valid one. */
#include "engine/http/jwt.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A P-256 public key (x, y of a real point), so inputs reach signature checks. */
static const char *const fixed_key =
    "eyJrdHkiOiJFQyIsImNydiI6IlAtMjU2IiwieCI6ImY4M09KM0QyeEY0dGY2NnNGTWhBZ1c1UWFRaVZJM2R6WXVqU1J"
    "JUnZyQ1EiLCJ5IjoieE9FTTJJSWd5ZnVZQmJ0aGdHdG1BNk9ER0M5cmhWZ3I4MHRhSGdPUEk3byJ9";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    size_t tlen = strlen(buf);
    const char *key_text = tlen < size ? buf + tlen + 1 : fixed_key;
    struct vg_jwt_key *key = NULL;
    char err[256];
    if (vg_jwt_key_parse(key_text, &key, err, sizeof(err)) == 0 ||
        vg_jwt_key_parse(fixed_key, &key, err, sizeof(err)) == 0) {
        vg_jwt_verify(buf, key, "sub", NULL, 1750000000, err, sizeof(err));
        vg_jwt_key_free(key);
    }
    free(buf);
    return 0;
}
