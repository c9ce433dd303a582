/* sha256 (src/util/sha256.h): the FIPS 180-4 example vectors, block-boundary lengths (checked against
 * Python's hashlib), and incremental updates in every chunking giving the one-shot digest. */
#include "testutil.h"

#include "util/sha256.h"

static void hex_of(const unsigned char d[32], char out[65])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = '\0';
}

static void check_hex(const void *data, size_t n, const char *want)
{
    char got[65];
    memset(got, 'x', sizeof got);
    sha256_hex(data, n, got);
    assert_int_equal(got[64], '\0');
    assert_string_equal(got, want);
}

static void test_fips_vectors(void **state)
{
    (void)state;
    check_hex("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_hex("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_int_equal(strlen(m448) * 8, 448);
    check_hex(m448, strlen(m448), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                       "mnopqrstnopqrstu";
    assert_int_equal(strlen(m896) * 8, 896);
    check_hex(m896, strlen(m896), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_million_a(void **state)
{
    (void)state;
    /* one shot */
    size_t n = 1000000;
    char *a = malloc(n);
    assert_non_null(a);
    memset(a, 'a', n);
    check_hex(a, n, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
    /* and as 1000 updates of 1000 bytes (as FIPS describes it) */
    char k[1000];
    memset(k, 'a', sizeof k);
    sha256_ctx c;
    sha256_init(&c);
    for (int i = 0; i < 1000; i++)
        sha256_update(&c, k, sizeof k);
    unsigned char d[32];
    char hx[65];
    sha256_final(&c, d);
    hex_of(d, hx);
    assert_string_equal(hx, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_padding_boundaries(void **state)
{
    (void)state;
    /* lengths around the 55/56-byte padding split and the 64-byte block */
    static const struct {
        size_t n;
        const char *hex;
    } v[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {57, "f13b2d724659eb3bf47f2dd6af1accc87b81f09f59f2b75e5c0bed6589dfe8c6"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
        {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
        {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
        {128, "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e"},
    };
    char a[128];
    memset(a, 'a', sizeof a);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        check_hex(a, v[i].n, v[i].hex);
}

static void test_incremental_chunkings(void **state)
{
    (void)state;
    /* every byte value, 1024 bytes */
    unsigned char data[1024];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)i;
    const char *want = "785b0751fc2c53dc14a4ce3d800e69ef9ce1009eb327ccf458afe09c242c26c9";
    check_hex(data, sizeof data, want);
    static const size_t chunks[] = {1, 3, 7, 55, 56, 63, 64, 65, 100, 127, 128, 1000};
    for (size_t ci = 0; ci < sizeof chunks / sizeof chunks[0]; ci++) {
        sha256_ctx c;
        sha256_init(&c);
        size_t o = 0;
        while (o < sizeof data) {
            size_t k = chunks[ci] < sizeof data - o ? chunks[ci] : sizeof data - o;
            sha256_update(&c, data + o, k);
            sha256_update(&c, data + o, 0); /* empty updates change nothing */
            o += k;
        }
        unsigned char d[32];
        char hx[65];
        sha256_final(&c, d);
        hex_of(d, hx);
        if (strcmp(hx, want) != 0)
            fail_msg("chunks of %zu: %s", chunks[ci], hx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_vectors),
        cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_padding_boundaries),
        cmocka_unit_test(test_incremental_chunkings),
    };
    return cmocka_run_group_tests_name("sha256", tests, NULL, NULL);
}
