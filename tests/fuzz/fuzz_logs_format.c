/* libFuzzer target for CollectLogs' record writer (engine/runtimes/dotnet/logs_format.c): what a
 * .NET process sends in a Microsoft-Extensions-Logging MessageJson event (arguments, exception,
 * the FormattedMessage before it, a scope's arguments) is the input, split at NUL bytes; the
 * first byte picks the level and the format. Format strings with arbitrary braces, alignments and
 * holes, and arbitrary JSON, must give a bounded record or a refusal. */
#include "engine/runtimes/dotnet/logs_format.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    /* arguments \0 exception \0 last formatted \0 scope */
    const char *part[4] = {"", "", "", ""};
    char *p = text, *end = text + size - 1;
    for (int i = 0; i < 4 && p <= end; i++) {
        part[i] = p;
        p += strlen(p) + 1;
    }
    json_t *scope = json_loads(part[3], 0, NULL);
    const json_t *scopes[2] = {scope, scope};
    struct vg_dotnet_log_record r = {
        .unix_ns = (int64_t)data[0] * 86400000000000LL,
        .level = data[0] % 8,
        .event_id = data[0],
        .event_name = part[2],
        .category = part[2],
        .exception_json = part[1],
        .arguments_json = part[0],
        .last_formatted = part[2],
        .scopes = scopes,
        .n_scopes = json_is_object(scope) ? (size_t)(data[0] % 3) : 0,
    };
    struct vg_buf out;
    vg_buf_init(&out);
    int rc = vg_dotnet_log_format(&out, (data[0] >> 3) % 3, &r);
    if (out.len > VG_DOTNET_LOG_RECORD_MAX || (rc && out.len))
        abort(); /* a record past the bound, or a refused record left behind */
    vg_buf_free(&out);
    /* the message alone, from the input as a format string */
    json_t *args = json_loads(part[0], 0, NULL);
    vg_dotnet_log_message(&out, part[2], json_is_object(args) ? args : NULL);
    vg_buf_free(&out);
    json_decref(args);
    json_decref(scope);
    free(text);
    return 0;
}
