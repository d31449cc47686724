/* vigil generatekey: a new API key and the configuration holding it. By default vigil's own key
 * (the configuration keeps its SHA-256); with --jwt, dotnet-monitor's form: an ES384-signed JWT
 * and the public key (Authentication.MonitorApiKey), made as `dotnet monitor generatekey` does. */
#include "config/util.h"
#include "engine/cli/cli.h"
#include "engine/http/http.h"
#include "engine/http/jwt.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_EXPIRATION_S (7 * 24 * 3600) /* dotnet-monitor's generatekey default */

static int usage(FILE *f)
{
    fprintf(f, "usage: vigil generatekey [--output yaml|json|shell] [--jwt [--expiration TIME]]\n"
               "  Prints a new API key and the settings that accept it.\n"
               "  --jwt          dotnet-monitor's form: a JWT signed by a new ES384 key and its\n"
               "                 Authentication.MonitorApiKey {Subject, PublicKey}\n"
               "  --expiration   the JWT's lifetime: a TimeSpan (7.00:00:00, the default) or\n"
               "                 30d, 12h...\n");
    return f == stderr ? 2 : 0;
}

static int print_jwt(int output, uint64_t expires_ms)
{
    char *token, *subject, *pk;
    int64_t now = (int64_t)time(NULL), exp = now + (int64_t)(expires_ms / 1000);
    if (vg_jwt_generate(now, (int64_t)(expires_ms / 1000), &token, &subject, &pk) != 0) {
        fprintf(stderr, "vigil: cannot generate a key pair\n");
        return 1;
    }
    char when[32];
    time_t t = (time_t)exp;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (output == 1) {
        printf("{\"authorizationHeader\":\"Bearer %s\",\"expiration\":\"%s\",\"subject\":\"%s\","
               "\"publicKey\":\"%s\"}\n",
               token, when, subject, pk);
    } else if (output == 2) {
        printf("# Authorization: Bearer %s\n# expires %s\n"
               "export DotnetMonitor_Authentication__MonitorApiKey__Subject='%s'\n"
               "export DotnetMonitor_Authentication__MonitorApiKey__PublicKey='%s'\n",
               token, when, subject, pk);
    } else {
        printf("# New API key in dotnet-monitor's form (a JWT), shown only once; the private key\n"
               "# that signed it is discarded. It expires %s. Clients send it as:\n"
               "# Authorization: Bearer %s\n"
               "#\n"
               "# Put this in a vigil (or dotnet-monitor) settings file:\n"
               "Authentication:\n"
               "  MonitorApiKey:\n"
               "    Subject: \"%s\"\n"
               "    PublicKey: \"%s\"\n",
               when, token, subject, pk);
    }
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    free(subject);
    free(pk);
    return ferror(stdout) ? 1 : 0;
}

int vg_cmd_generatekey(int argc, char **argv)
{
    int output = 0; /* yaml, json, shell */
    bool jwt = false;
    uint64_t expires_ms = DEFAULT_EXPIRATION_S * 1000ull;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return usage(stdout);
        if (strcmp(a, "--jwt") == 0) {
            jwt = true;
            continue;
        }
        bool out_opt = !strcmp(a, "--output") || !strcmp(a, "-o") || !strncmp(a, "--output=", 9);
        bool exp_opt = !strcmp(a, "--expiration") || !strncmp(a, "--expiration=", 13);
        if (!out_opt && !exp_opt)
            return usage(stderr);
        const char *eq = strchr(a, '=');
        if (eq)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return usage(stderr);
        if (exp_opt) {
            if (vg_parse_duration_ms(v, &expires_ms) != 0 || expires_ms < 1000) {
                fprintf(stderr, "vigil generatekey: --expiration takes a positive TimeSpan\n");
                return 2;
            }
        } else if (strcasecmp(v, "json") == 0) {
            output = 1;
        } else if (strcasecmp(v, "shell") == 0) {
            output = 2;
        } else if (strcasecmp(v, "yaml") == 0) {
            output = 0;
        } else {
            return usage(stderr);
        }
    }
    if (jwt)
        return print_jwt(output, expires_ms);
    char key[VG_HTTP_APIKEY_LEN + 1], hash[VG_HTTP_APIKEY_HASH_LEN + 1];
    if (vg_http_apikey_generate(key, hash) != 0) {
        fprintf(stderr, "vigil: cannot generate a key (no randomness available)\n");
        return 1;
    }
    if (output == 1) {
        printf("{\"apiKey\":\"%s\",\"apiKeyHash\":\"%s\",\"authorizationHeader\":\"Bearer %s\"}\n",
               key, hash, key);
    } else if (output == 2) {
        printf("# Authorization: Bearer %s\nexport DotnetMonitor_Server__Auth__ApiKeyHash='%s'\n",
               key, hash);
    } else {
        printf("# New vigil API key. It is shown only once and is not stored anywhere;\n"
               "# clients send it as: Authorization: Bearer %s\n"
               "# Key: %s\n"
               "#\n"
               "# Put this in a vigil settings file (only the hash is kept):\n"
               "Server:\n"
               "  Auth:\n"
               "    ApiKeyHash: \"%s\"\n",
               key, key, hash);
    }
    OPENSSL_cleanse(key, sizeof(key));
    return ferror(stdout) ? 1 : 0;
}
