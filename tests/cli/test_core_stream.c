/* The ELF core stream checker (engine/cli/core_stream.c) on cores built here: the length its
 * headers announce, in one piece and byte by byte, 32- and 64-bit, PN_XNUM, and what is no core. */
#include "config/error.h"
#include "engine/cli/core_stream.h"
#include "tests/lib/vg_test.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>

/* A 64-bit core: header, n program headers, zeros up to `len`. */
static unsigned char *core64(size_t len, const Elf64_Phdr *ph, uint16_t n, uint64_t shoff)
{
    unsigned char *b = calloc(1, len);
    Elf64_Ehdr h = {0};
    memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = ELFCLASS64;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    h.e_ident[EI_VERSION] = EV_CURRENT;
    h.e_type = ET_CORE;
    h.e_machine = EM_X86_64;
    h.e_phoff = sizeof(h);
    h.e_phentsize = sizeof(Elf64_Phdr);
    h.e_phnum = n;
    h.e_shoff = shoff;
    h.e_shentsize = shoff ? sizeof(Elf64_Shdr) : 0;
    h.e_shnum = shoff ? 1 : 0;
    memcpy(b, &h, sizeof(h));
    if (n != PN_XNUM)
        memcpy(b + sizeof(h), ph, n * sizeof(*ph));
    return b;
}

static int feed(const unsigned char *b, size_t len, size_t step, struct vg_core_stream *c)
{
    vg_core_stream_init(c);
    for (size_t off = 0; off < len; off += step) {
        int rc = vg_core_stream_feed(c, b + off, len - off < step ? len - off : step);
        if (rc)
            return rc;
    }
    char err[256];
    return vg_core_stream_end(c, err, sizeof(err));
}

static void test_complete_and_truncated(void **state)
{
    Elf64_Phdr ph[2] = {{.p_type = PT_NOTE, .p_offset = 200, .p_filesz = 100},
                        {.p_type = PT_LOAD, .p_offset = 4096, .p_filesz = 8192}};
    unsigned char *b = core64(12288, ph, 2, 0);
    struct vg_core_stream c;
    size_t steps[] = {12288, 1, 7, 64, 4096};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        assert_int_equal(feed(b, 12288, steps[i], &c), 0);
        assert_int_equal(vg_core_stream_expected(&c), 12288);
    }
    assert_int_equal(feed(b, 12287, 4096, &c), VG_ETRUNCATED);
    assert_int_equal(feed(b, 100, 3, &c), VG_ETRUNCATED); /* inside the program headers */
    assert_int_equal(feed(b, 40, 1, &c), VG_ETRUNCATED);  /* inside the ELF header */
    assert_int_equal(feed(b, 0, 1, &c), VG_EPARSE);
    /* a segment without bytes in the file (coredump_filter) counts for nothing */
    ph[1].p_filesz = 0;
    free(b);
    b = core64(300, ph, 2, 0);
    assert_int_equal(feed(b, 300, 13, &c), 0);
    assert_int_equal(vg_core_stream_expected(&c), 300);
    free(b);
}

static void test_xnum(void **state)
{
    unsigned char *b = core64(20000 + sizeof(Elf64_Shdr), NULL, PN_XNUM, 20000);
    struct vg_core_stream c;
    assert_int_equal(feed(b, 20000 + sizeof(Elf64_Shdr), 999, &c), 0);
    assert_int_equal(vg_core_stream_expected(&c), 20000 + sizeof(Elf64_Shdr));
    assert_int_equal(feed(b, 20000, 999, &c), VG_ETRUNCATED);
    free(b);
}

static void test_elf32(void **state)
{
    unsigned char b[2048] = {0};
    Elf32_Ehdr h = {0};
    memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = ELFCLASS32;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    h.e_type = ET_CORE;
    h.e_phoff = sizeof(h);
    h.e_phentsize = sizeof(Elf32_Phdr);
    h.e_phnum = 1;
    Elf32_Phdr ph = {.p_type = PT_LOAD, .p_offset = 1024, .p_filesz = 1024};
    memcpy(b, &h, sizeof(h));
    memcpy(b + sizeof(h), &ph, sizeof(ph));
    struct vg_core_stream c;
    assert_int_equal(feed(b, sizeof(b), 5, &c), 0);
    assert_int_equal(vg_core_stream_expected(&c), 2048);
    assert_int_equal(feed(b, sizeof(b) - 1, 5, &c), VG_ETRUNCATED);
}

static void test_not_a_core(void **state)
{
    Elf64_Phdr ph = {.p_type = PT_LOAD, .p_offset = 64, .p_filesz = 64};
    unsigned char *b = core64(4096, &ph, 1, 0);
    struct vg_core_stream c;
    b[EI_DATA] = ELFDATA2MSB;
    assert_int_equal(feed(b, 4096, 4096, &c), VG_EPARSE);
    assert_non_null(strstr(c.error, "little-endian"));
    b[EI_DATA] = ELFDATA2LSB;
    ((Elf64_Ehdr *)(void *)b)->e_type = ET_EXEC;
    assert_int_equal(feed(b, 4096, 1, &c), VG_EPARSE);
    assert_non_null(strstr(c.error, "not a core"));
    ((Elf64_Ehdr *)(void *)b)->e_type = ET_CORE;
    ((Elf64_Ehdr *)(void *)b)->e_phnum = 0;
    assert_int_equal(feed(b, 4096, 1, &c), VG_EPARSE);
    ((Elf64_Ehdr *)(void *)b)->e_phnum = 1;
    ((Elf64_Ehdr *)(void *)b)->e_phentsize = 32;
    assert_int_equal(feed(b, 4096, 1, &c), VG_EPARSE);
    memcpy(b, "MZ\x90", 3);
    assert_int_equal(feed(b, 4096, 4096, &c), VG_EPARSE);
    assert_non_null(strstr(c.error, "no ELF magic"));
    free(b);
}

static void test_lengths_that_overflow(void **state)
{
    Elf64_Phdr ph = {.p_type = PT_LOAD, .p_offset = UINT64_MAX - 10, .p_filesz = 100};
    unsigned char *b = core64(4096, &ph, 1, 0);
    struct vg_core_stream c;
    assert_int_equal(feed(b, 4096, 4096, &c), VG_ETRUNCATED);
    assert_true(vg_core_stream_expected(&c) == UINT64_MAX);
    free(b);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_complete_and_truncated),
        cmocka_unit_test(test_xnum),
        cmocka_unit_test(test_elf32),
        cmocka_unit_test(test_not_a_core),
        cmocka_unit_test(test_lengths_that_overflow),
    };
    return VG_TEST_MAIN(tests, NULL, NULL);
}
