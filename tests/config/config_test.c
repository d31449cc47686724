/* Helpers shared by the configuration unit tests (see config_test.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config_test.h"

#include "config/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *make_dir(void)
{
    char tmpl[] = "/tmp/vg-config-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

void write_file(const char *dir, const char *name, const char *text, size_t len)
{
    char *p = vg_asprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    free(p);
}

void put(const char *dir, const char *name, const char *text)
{
    write_file(dir, name, text, strlen(text));
}

void rm_rf(const char *path)
{
    char *cmd = vg_asprintf("rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

char *diag_text(struct vg_diags *d, const char *dir)
{
    struct vg_buf b;
    vg_buf_init(&b);
    vg_diags_sort(d);
    size_t dl = dir ? strlen(dir) : 0;
    for (size_t i = 0; i < d->n; i++) {
        char *line = vg_diag_format(&d->v[i]);
        const char *s = line;
        if (dir && strncmp(s, dir, dl) == 0 && s[dl] == '/')
            s += dl + 1;
        vg_buf_printf(&b, "%s\n", s);
        free(line);
    }
    return vg_buf_steal(&b);
}

void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) {
        fprintf(stderr, "expected to find:\n  %s\nin:\n%s\n", needle, hay);
        fail();
    }
}
