/* Azure Shared Key signer tests: the string to sign from the "Authorize with Shared Key" page's
 * example, vigil's Blob request shapes against an independent computation
 * (tests/data/egress/gen_vectors.py, fixed here), base64 (RFC 4648 vectors) and HTTP dates.
 * The same signer was checked once against a live Azurite (see docs/egress-signing.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/error.h"
#include "egress/azure_sign.h"

/* The well-known, public Azurite/emulator account key. */
#define DEV_ACCOUNT "devstoreaccount1"
#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define DATE "Sun, 22 Nov 2026 01:02:03 GMT"

static void sign_ok(const struct vg_azure_sign_request *req, const char *want_sts,
                    const char *want_auth)
{
    char *auth = NULL, *sts = NULL;
    assert_int_equal(vg_azure_shared_key_sign(req, DEV_KEY, &auth, &sts), 0);
    assert_string_equal(sts, want_sts);
    if (want_auth)
        assert_string_equal(auth, want_auth);
    free(auth);
    free(sts);
    /* The string to sign is optional. */
    assert_int_equal(vg_azure_shared_key_sign(req, DEV_KEY, &auth, NULL), 0);
    if (want_auth)
        assert_string_equal(auth, want_auth);
    free(auth);
}

static void test_doc_example_string_to_sign(void **state)
{
    (void)state;
    /* "Authorize with Shared Key", Blob/Queue/File string-to-sign example:
     * GET https://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=metadata
     * &timeout=20 with x-ms-date and x-ms-version 2015-02-21. */
    const struct vg_http_header h[] = {
        {"x-ms-version", "2015-02-21"},
        {"x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"},
    };
    struct vg_azure_sign_request req = {
        .method = "GET",
        .account = "myaccount",
        .path = "/mycontainer",
        .query = "restype=container&comp=metadata&timeout=20",
        .headers = h,
        .n_headers = 2,
    };
    sign_ok(&req,
            "GET\n\n\n\n\n\n\n\n\n\n\n\n"
            "x-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-version:2015-02-21\n"
            "/myaccount/mycontainer\ncomp:metadata\nrestype:container\ntimeout:20",
            NULL);
}

static void test_create_container_path_style(void **state)
{
    (void)state;
    /* gen_vectors.py: azure-create-container. Path-style: the account appears twice. */
    const struct vg_http_header h[] = {
        {"x-ms-date", DATE},
        {"x-ms-version", "2021-08-06"},
        {"Content-Length", "0"}, /* signed as empty */
    };
    struct vg_azure_sign_request req = {
        .method = "PUT",
        .account = DEV_ACCOUNT,
        .path = "/devstoreaccount1/vigil",
        .query = "restype=container",
        .headers = h,
        .n_headers = 3,
        .path_style = true,
    };
    sign_ok(&req,
            "PUT\n\n\n\n\n\n\n\n\n\n\n\n"
            "x-ms-date:" DATE "\nx-ms-version:2021-08-06\n"
            "/devstoreaccount1/devstoreaccount1/vigil\nrestype:container",
            "SharedKey devstoreaccount1:/C0l4btFCHYDS/Fes6Fre6RgifaOb0A8fhkjVjyVlqM=");
}

static void test_put_block(void **state)
{
    (void)state;
    /* gen_vectors.py: azure-put-block. Encoded path kept as sent, query values decoded,
     * x-ms-* names lowercased and values trimmed, other headers in their fixed slots. */
    const struct vg_http_header h[] = {
        {"x-ms-version", "2021-08-06"}, {"Content-Type", "application/octet-stream"},
        {"x-ms-meta-Host", "  web-1 "}, {"x-ms-date", DATE},
        {"content-length", "4096"},     {"X-MS-Client-Request-Id", "r1"},
        {"User-Agent", "vigil/0.1"}, /* not signed */
    };
    struct vg_azure_sign_request req = {
        .method = "PUT",
        .account = DEV_ACCOUNT,
        .path = "/devstoreaccount1/vigil/dumps/my%20key%20%C3%BC.core",
        .query = "comp=block&blockid=YmxvY2stMDAwMDE%3D",
        .headers = h,
        .n_headers = 7,
        .path_style = true,
    };
    sign_ok(&req,
            "PUT\n\n\n4096\n\napplication/octet-stream\n\n\n\n\n\n\n"
            "x-ms-client-request-id:r1\nx-ms-date:" DATE "\nx-ms-meta-host:web-1\n"
            "x-ms-version:2021-08-06\n"
            "/devstoreaccount1/devstoreaccount1/vigil/dumps/my%20key%20%C3%BC.core\n"
            "blockid:YmxvY2stMDAwMDE=\ncomp:block",
            "SharedKey devstoreaccount1:eDUa8pjSr6Qfu66WTaMesLHdgR4N2xu8UJvPuwJ7ybE=");
}

static void test_list_repeated_query(void **state)
{
    (void)state;
    /* gen_vectors.py: azure-list-multi. Repeated names: values sorted and comma-joined; names
     * lowercased ("Prefix") and sorted; Range in its slot. */
    const struct vg_http_header h[] = {
        {"x-ms-date", DATE},
        {"x-ms-version", "2021-08-06"},
        {"Range", "bytes=0-99"},
    };
    struct vg_azure_sign_request req = {
        .method = "GET",
        .account = DEV_ACCOUNT,
        .path = "/devstoreaccount1/vigil",
        .query = "restype=container&comp=list&include=snapshots&include=metadata&Prefix=dumps%2F",
        .headers = h,
        .n_headers = 3,
        .path_style = true,
    };
    sign_ok(&req,
            "GET\n\n\n\n\n\n\n\n\n\n\nbytes=0-99\n"
            "x-ms-date:" DATE "\nx-ms-version:2021-08-06\n"
            "/devstoreaccount1/devstoreaccount1/vigil\ncomp:list\ninclude:metadata,snapshots\n"
            "prefix:dumps/\nrestype:container",
            "SharedKey devstoreaccount1:c7ve8TQKyJaDpCyBxn5d/r9jxyDMBvW5comu2+d3tt8=");
}

static void test_all_standard_slots(void **state)
{
    (void)state;
    const struct vg_http_header h[] = {
        {"Range", "r"},
        {"If-Unmodified-Since", "ius"},
        {"If-None-Match", "inm"},
        {"If-Match", "im"},
        {"If-Modified-Since", "ims"},
        {"Date", "d"},
        {"Content-Type", "ct"},
        {"Content-MD5", "md5"},
        {"Content-Length", "10"},
        {"Content-Language", "cl"},
        {"Content-Encoding", "ce"},
    };
    struct vg_azure_sign_request req = {
        .method = "PUT",
        .account = "acct",
        .path = "/c/b",
        .headers = h,
        .n_headers = 11,
    };
    sign_ok(&req, "PUT\nce\ncl\n10\nmd5\nct\nd\nims\nim\ninm\nius\nr\n/acct/c/b", NULL);
}

static void test_invalid(void **state)
{
    (void)state;
    char *auth = (char *)"x", *sts = (char *)"x";
    struct vg_azure_sign_request req = {
        .method = "PUT",
        .account = DEV_ACCOUNT,
        .path = "/vigil",
        .path_style = true, /* but the path lacks the account segment */
    };
    assert_int_equal(vg_azure_shared_key_sign(&req, DEV_KEY, &auth, &sts), VG_EINVAL);
    assert_null(auth);
    assert_null(sts);
    req.path = "/devstoreaccount1x/vigil";
    assert_int_equal(vg_azure_shared_key_sign(&req, DEV_KEY, &auth, NULL), VG_EINVAL);
    req.path = "/devstoreaccount1";
    assert_int_equal(vg_azure_shared_key_sign(&req, DEV_KEY, &auth, NULL), 0);
    free(auth);
    req.path = "/devstoreaccount1/vigil";
    assert_int_equal(vg_azure_shared_key_sign(&req, "not base64!", &auth, NULL), VG_EINVAL);
    assert_int_equal(vg_azure_shared_key_sign(&req, "", &auth, NULL), VG_EINVAL);
    assert_int_equal(vg_azure_shared_key_sign(&req, NULL, &auth, NULL), VG_EINVAL);
    assert_int_equal(vg_azure_shared_key_sign(NULL, DEV_KEY, &auth, NULL), VG_EINVAL);
    req.account = "a/b";
    assert_int_equal(vg_azure_shared_key_sign(&req, DEV_KEY, &auth, NULL), VG_EINVAL);
    req.account = DEV_ACCOUNT;
    const struct vg_http_header forged[] = {{"x-ms-meta-a", "1\nx-ms-version:2099"}};
    req.headers = forged;
    req.n_headers = 1;
    assert_int_equal(vg_azure_shared_key_sign(&req, DEV_KEY, &auth, NULL), VG_EINVAL);
    assert_null(auth);
}

static void test_base64(void **state)
{
    (void)state;
    /* RFC 4648 section 10 */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        struct vg_buf b;
        vg_buf_init(&b);
        assert_int_equal(vg_base64_encode(plain[i], strlen(plain[i]), &b), 0);
        assert_string_equal(b.data ? b.data : "", enc[i]);
        vg_buf_reset(&b);
        assert_int_equal(vg_base64_decode(enc[i], &b), 0);
        assert_int_equal(b.len, strlen(plain[i]));
        assert_memory_equal(b.data, plain[i], b.len);
        vg_buf_free(&b);
    }
    static const char *const bad[] = {"Zg=",  "Z===", "Zg=a", "Zm9v\n",
                                      "Zm 9", "Zm9-", "=Zm9", "Zg==Zg=="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vg_buf b;
        vg_buf_init(&b);
        if (vg_base64_decode(bad[i], &b) != VG_EINVAL)
            fail_msg("accepted %s", bad[i]);
        vg_buf_free(&b);
    }
    /* Binary round trip, and the emulator key decodes to 64 bytes. */
    unsigned char bin[256];
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (unsigned char)(255 - i);
    struct vg_buf e, d;
    vg_buf_init(&e);
    vg_buf_init(&d);
    assert_int_equal(vg_base64_encode(bin, sizeof(bin), &e), 0);
    assert_int_equal(vg_base64_decode(e.data, &d), 0);
    assert_int_equal(d.len, sizeof(bin));
    assert_memory_equal(d.data, bin, sizeof(bin));
    vg_buf_reset(&d);
    assert_int_equal(vg_base64_decode(DEV_KEY, &d), 0);
    assert_int_equal(d.len, 64);
    vg_buf_free(&e);
    vg_buf_free(&d);
}

static void test_rfc1123(void **state)
{
    (void)state;
    char out[32];
    vg_rfc1123_date(1795309323, out);
    assert_string_equal(out, DATE);
    vg_rfc1123_date(0, out);
    assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    vg_rfc1123_date(951782400 + 86399, out);
    assert_string_equal(out, "Tue, 29 Feb 2000 23:59:59 GMT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doc_example_string_to_sign),
        cmocka_unit_test(test_create_container_path_style),
        cmocka_unit_test(test_put_block),
        cmocka_unit_test(test_list_repeated_query),
        cmocka_unit_test(test_all_standard_slots),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_rfc1123),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
