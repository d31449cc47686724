/* vigil status: every rule's state per process, for people at a terminal. */
#include "config/error.h"
#include "config/util.h"
#include "engine/cli/cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vg_cmd_status(int argc, char **argv)
{
    static const char usage[] =
        "usage: vigil status [--url URL] [--api-key-file FILE]\n"
        "  Prints every rule's state for each process it applies to (key: --api-key-file or "
        "VIGIL_API_KEY).\n";
    const char *url;
    char key[256];
    int rc = vg__cli_parse_common(argc, argv, usage, &url, key, sizeof(key));
    if (rc)
        return rc < 0 ? 0 : rc;
    json_t *j;
    if (vg__cli_api_get(url, key, "/instances", &j))
        return 1;
    json_t *arr = json_object_get(j, "instances");
    printf("%-24s %8s  %-16s %-16s %5s  %s\n", "RULE", "PID", "PROCESS", "STATE", "RUNS",
           "LAST FIRED / ERROR");
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        char name[128], rule[128], errbuf[512];
        const char *err = json_string_value(json_object_get(o, "lastError"));
        if (err)
            err = vg__cli_printable(err, errbuf, sizeof(errbuf));
        const char *last = json_string_value(json_object_get(o, "lastFired"));
        printf("%-24s %8lld  %-16s %-16s %5lld  %s\n",
               vg__cli_printable(json_string_value(json_object_get(o, "rule")), rule, sizeof(rule)),
               (long long)json_integer_value(json_object_get(o, "pid")),
               vg__cli_printable(json_string_value(json_object_get(o, "name")), name, sizeof(name)),
               json_string_value(json_object_get(o, "state")),
               (long long)json_integer_value(json_object_get(o, "lifetimeOccurrences")),
               err    ? err
               : last ? last
                      : "-");
    }
    if (json_array_size(arr) == 0)
        printf("(no rule matches any process)\n");
    const char *cfg = json_string_value(json_object_get(j, "configurationErrors"));
    if (cfg)
        printf("\nthe last configuration reload was rejected:\n%s\n", cfg);
    json_decref(j);
    return 0;
}
