/* vigil ps: the processes the daemon sees, for people at a terminal. */
#include "config/error.h"
#include "config/util.h"
#include "engine/cli/cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vg_cmd_ps(int argc, char **argv)
{
    static const char usage[] = "usage: vigil ps [--url URL] [--api-key-file FILE]\n"
                                "  Lists the processes the daemon sees (key: --api-key-file or "
                                "VIGIL_API_KEY).\n";
    const char *url;
    char key[256];
    int rc = vg__cli_parse_common(argc, argv, usage, &url, key, sizeof(key));
    if (rc)
        return rc < 0 ? 0 : rc;
    json_t *j;
    if (vg__cli_api_get(url, key, "/processes", &j))
        return 1;
    printf("%8s  %-20s  %s\n", "PID", "NAME", "UID");
    size_t i;
    json_t *p;
    json_array_foreach(j, i, p)
    {
        char name[128];
        printf("%8lld  %-20s  %s\n", (long long)json_integer_value(json_object_get(p, "pid")),
               vg__cli_printable(json_string_value(json_object_get(p, "name")), name, sizeof(name)),
               json_string_value(json_object_get(p, "uid")));
    }
    json_decref(j);
    return 0;
}
