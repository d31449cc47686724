#include "engine/cli/cli.h"
#include "engine/http/http.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int usage(void)
{
    fprintf(stderr, "usage: vigil generatekey [--output yaml|json]\n");
    return 2;
}

int vg_cmd_generatekey(int argc, char **argv)
{
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (strcmp(a, "--output") == 0 || strcmp(a, "-o") == 0) {
            if (i + 1 >= argc)
                return usage();
            v = argv[++i];
        } else if (strncmp(a, "--output=", 9) == 0) {
            v = a + 9;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 0;
        } else {
            return usage();
        }
        if (strcasecmp(v, "json") == 0)
            json = true;
        else if (strcasecmp(v, "yaml") == 0)
            json = false;
        else
            return usage();
    }
    char key[VG_HTTP_APIKEY_LEN + 1], hash[VG_HTTP_APIKEY_HASH_LEN + 1];
    if (vg_http_apikey_generate(key, hash) != 0) {
        fprintf(stderr, "vigil: cannot generate a key (no randomness available)\n");
        return 1;
    }
    if (json) {
        printf("{\"apiKey\":\"%s\",\"apiKeyHash\":\"%s\",\"authorizationHeader\":\"Bearer %s\"}\n",
               key, hash, key);
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
