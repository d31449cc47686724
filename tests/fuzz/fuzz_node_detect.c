/* libFuzzer target for the Node detection parsers: the ELF GNU-hash symbol lookup over an
 * arbitrary "executable", /proc/net/tcp{,6} tables, and node's options (argv + NODE_OPTIONS). */
#include "config/error.h"
#include "engine/runtimes/node/detect.h"
#include "engine/runtimes/node/inspector.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem {
    const uint8_t *p;
    size_t n;
};

static int mem_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    const struct mem *m = ctx;
    if (off > m->n || len > m->n - off)
        return VG_EIO;
    memcpy(buf, m->p + off, len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mem m = {data, size};
    vg_node_elf_has_symbol(mem_read, &m, "node_module_register");

    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct vg_node_listener ls[16];
    vg_node_parse_net_tcp(text, size & 1, ls, 16);

    const char *argv[64];
    size_t argc = vg_node_split_nul(text, size + 1, argv, 64);
    struct vg_node_options o;
    vg_node_parse_options(argc ? argv[argc - 1] : NULL, argv, argc, &o);
    free(text);
    return 0;
}
