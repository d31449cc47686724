/* JWT bearer tokens as dotnet-monitor's Authentication.MonitorApiKey accepts them: signed with
 * ES256/ES384/ES512 or RS256/RS384/RS512 (what `dotnet monitor generatekey` and its documented
 * procedure produce; `none` and HMAC are refused), verified with the public key from a base64url
 * JSON Web Key; `aud` https://github.com/dotnet/dotnet-monitor, `iss` the configured issuer,
 * `sub` the configured subject, `exp` required (number or numeric string), `nbf` honoured, with
 * dotnet-monitor's (IdentityModel's) 5 minutes of clock skew. Independent of the HTTP server:
 * pure functions over strings, callable from any thread. */
#ifndef VG_JWT_H
#define VG_JWT_H

#include <stddef.h>
#include <stdint.h>

#define VG_JWT_AUDIENCE "https://github.com/dotnet/dotnet-monitor"
#define VG_JWT_ISSUER "https://github.com/dotnet/dotnet-monitor/generatekey+MonitorApiKey"
#define VG_JWT_CLOCK_SKEW_S 300
#define VG_JWT_MAX_TOKEN 16384 /* bytes; longer tokens are refused before any decoding */

struct vg_jwt_key;

/* Imports the public key of a JSON Web Key given base64url-encoded (kty EC with crv P-256,
 * P-384 or P-521 and x, y; or kty RSA with n, e), member names in any case as .NET writes them.
 * Returns 0, VG_ECONFIG (err says why) or VG_ENOMEM. */
int vg_jwt_key_parse(const char *public_key_b64url, struct vg_jwt_key **out, char *err,
                     size_t errlen);
void vg_jwt_key_free(struct vg_jwt_key *key); /* NULL-safe */

/* Verifies `token` (the text after "Bearer "): signature with `key`, then the claims. `issuer`
 * NULL means generatekey's; `now` is Unix seconds. Returns 0 when the token authenticates,
 * VG_EAUTH when it does not (err says why, never quoting the token), VG_ENOMEM. */
int vg_jwt_verify(const char *token, const struct vg_jwt_key *key, const char *subject,
                  const char *issuer, int64_t now, char *err, size_t errlen);

/* A new key pair and token as `dotnet monitor generatekey` makes them: an ECDSA P-384 key, an
 * ES384 token {aud, exp (seconds since the epoch, as a string), iss generatekey's, sub a random
 * UUID} expiring `expires_s` seconds after `now`, and the public JSON Web Key base64url-encoded.
 * The private key is discarded. Outputs are malloc'ed. Returns 0, VG_EFATAL (no randomness or
 * OpenSSL failure) or VG_ENOMEM. */
int vg_jwt_generate(int64_t now, int64_t expires_s, char **token, char **subject,
                    char **public_key);

#endif
