/* libFuzzer target for the .NET diagnostic IPC parsers (engine/runtimes/dotnet): a reply read
 * through the memory transport (the same code path as a socket), its error payload with and
 * without a message, ProcessInfo 1/2/3 payloads, the ProcessEnvironment continuation that
 * follows a reply, the listen-mode advertise, and cookie text. */
#include "engine/runtimes/dotnet/ipc_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_env(void *ctx, const char *name, const char *value)
{
    (*(size_t *)ctx) += strlen(name) + strlen(value);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct vg__dnipc_reply r;
    char err[256];
    struct vg_dnipc_io io = {.timeout_ms = 0, .err = err, .errlen = sizeof(err)};
    struct vg__dnipc_conn c;

    vg__dnipc_conn_mem(&c, data, size, &io);
    if (vg__dnipc_recv(&c, &r) == 0) {
        vg__dnipc_check(&r, &io, "op", "fuzz", false);
        vg__dnipc_check(&r, &io, "op", "fuzz", true);
        for (unsigned cmd = 1; cmd <= 3; cmd++) {
            struct vg_dnipc_process_info pi;
            if (vg__dnipc_parse_process_info(cmd, r.payload, r.payload_len, &pi) == 0)
                vg_dnipc_process_info_free(&pi);
        }
        size_t total = 0;
        vg__dnipc_read_environment(&c, &r, count_env, &total);
    }
    /* the same bytes as a bare payload */
    for (unsigned cmd = 1; cmd <= 3; cmd++) {
        struct vg_dnipc_process_info pi;
        if (vg__dnipc_parse_process_info(cmd, data, size, &pi) == 0)
            vg_dnipc_process_info_free(&pi);
    }
    struct vg_dnipc_advert adv;
    vg_dnipc_parse_advert(data, size, &adv);
    free(vg__dnipc_utf16_to_utf8(data, size / 2));
    char text[40];
    size_t n = size < 36 ? size : 36;
    memcpy(text, data, n);
    text[n] = 0;
    uint8_t cookie[16];
    if (vg_dnipc_cookie_parse(text, cookie) == 0) {
        char back[37];
        vg_dnipc_cookie_format(cookie, back);
    }
    return 0;
}
