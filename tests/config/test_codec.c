/* config/codec: the one hex codec and URL encoder/decoder of the house. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "config/codec.h"
#include "config/error.h"

static void test_hex(void **unused)
{
    const unsigned char in[] = {0x00, 0x7f, 0x80, 0xab, 0xff};
    char hex[11];
    vg_hex_encode(in, sizeof(in), hex);
    assert_string_equal(hex, "007f80abff");
    unsigned char out[5];
    assert_int_equal(vg_hex_decode("007F80aBfF", out, 5), 0);
    assert_memory_equal(out, in, 5);
    assert_int_equal(vg_hex_decode("007f80abf", out, 5), VG_EINVAL);  /* short */
    assert_int_equal(vg_hex_decode("007f80abfg", out, 5), VG_EINVAL); /* not a digit */
    assert_int_equal(vg_hex_decode("", out, 0), 0);
    vg_hex_encode(in, 0, hex);
    assert_string_equal(hex, "");
    assert_int_equal(vg_hex_value('G'), -1);
    assert_int_equal(vg_hex_value('f'), 15);
}

static void test_url_encode(void **unused)
{
    struct vg_buf b;
    vg_buf_init(&b);
    assert_int_equal(vg_url_encode("a/b c~", true, &b), 0);
    assert_string_equal(b.data, "a/b%20c~");
    vg_buf_reset(&b);
    assert_int_equal(vg_url_encode("a/b c~", false, &b), 0);
    assert_string_equal(b.data, "a%2Fb%20c~");
    vg_buf_free(&b);
    /* never NULL, even for "" */
    assert_int_equal(vg_url_encode("", false, &b), 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    vg_buf_free(&b);
    assert_int_equal(vg_url_encode_n("a\0b", 3, false, &b), 0);
    assert_string_equal(b.data, "a%00b");
    vg_buf_free(&b);
}

static void test_url_decode(void **unused)
{
    struct vg_buf b;
    vg_buf_init(&b);
    const char *s = "a%2Fb+c%zz%4";
    assert_int_equal(vg_url_decode_n(s, strlen(s), true, &b), 0);
    assert_string_equal(b.data, "a/b c%zz%4");
    vg_buf_reset(&b);
    assert_int_equal(vg_url_decode_n(s, strlen(s), false, &b), 0);
    assert_string_equal(b.data, "a/b+c%zz%4");
    vg_buf_reset(&b);
    /* an escape cut by n stays literal */
    assert_int_equal(vg_url_decode_n("%41%42", 5, false, &b), 0);
    assert_string_equal(b.data, "A%4");
    vg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_url_encode),
        cmocka_unit_test(test_url_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
