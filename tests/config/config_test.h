/* Helpers shared by the configuration unit tests (test_config.c, test_sources.c): scratch
 * directories, files in them, and diagnostics as text. Every helper asserts (cmocka) on failure. */
#ifndef VG_TESTS_CONFIG_TEST_H
#define VG_TESTS_CONFIG_TEST_H

#include <stddef.h>

#include "config/tree.h"

/* A new empty directory under /tmp (free() the path, rm_rf() the directory). */
char *make_dir(void);

/* dir/name holds exactly text[0..len) (or the string text for put()). */
void write_file(const char *dir, const char *name, const char *text, size_t len);
void put(const char *dir, const char *name, const char *text);

void rm_rf(const char *path);

/* Every diagnostic of d, sorted, one per line, the prefix "dir/" removed (dir may be NULL). */
char *diag_text(struct vg_diags *d, const char *dir);

/* Fails the case, printing both, unless hay contains needle. */
void assert_contains(const char *hay, const char *needle);

#endif
