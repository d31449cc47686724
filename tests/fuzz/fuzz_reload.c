/* libFuzzer target for configuration reload sequences (issue 16): the input is up to six
 * configuration files separated by a line "---8<---"; each is written as the configuration
 * directory's only file and built into a generation (config load, rule compilation, egress
 * creation) exactly as `vigil run` does on a reload; a generation that builds replaces the
 * current one, one that does not leaves it running. Valid and invalid configurations alternate
 * in the corpus (tests/fuzz/corpus/reload). Finds crashes and leaks in build and teardown paths,
 * such as the one an unbuildable egress provider caused. */
#include "config/log.h"
#include "engine/engine_int.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], state[80], file[96];

static void setup(void)
{
    if (dir[0])
        return;
    vg_log_level = -1; /* quiet */
    snprintf(dir, sizeof(dir), "/tmp/vg-fuzz-reload-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(file, sizeof(file), "%s/conf/rules.yaml", dir);
    char conf[80];
    snprintf(conf, sizeof(conf), "%s/conf", dir);
    mkdir(conf, 0700);
    mkdir(state, 0700);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char sep[] = "\n---8<---\n";
    setup();
    char conf[80];
    snprintf(conf, sizeof(conf), "%s/conf", dir);
    const char *const dirs[] = {conf};
    struct vg_daemon_options opts = {.config_dirs = dirs, .n_config_dirs = 1};
    struct vg_daemon d = {.opts = &opts, .state_dir = state};
    struct vg_gen *cur = NULL;
    const char *p = (const char *)data, *end = p + size;
    for (int i = 0; i < 6 && p <= end; i++) {
        const char *next = memmem(p, (size_t)(end - p), sep, sizeof(sep) - 1);
        size_t len = next ? (size_t)(next - p) : (size_t)(end - p);
        int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            abort();
        if (len && write(fd, p, len) != (ssize_t)len)
            abort();
        close(fd);
        struct vg_gen *g = NULL;
        char *errors = NULL;
        if (vg__gen_build(&d, &g, &errors) == 0) {
            vg__gen_unref(cur);
            cur = g;
        }
        free(errors);
        if (!next)
            break;
        p = next + sizeof(sep) - 1;
    }
    vg__gen_unref(cur);
    return 0;
}
