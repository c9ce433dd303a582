/* timeutil (src/util/timeutil.h): the fixed-width wire format (epoch, negative times, leap days, the
 * width at the edges), parsing (Z, offsets, fractions, bare dates, invalid calendar dates, junk) and
 * the round trip between the two. */
#include "testutil.h"

#include "util/timeutil.h"

static void iso_is(int64_t us, const char *want)
{
    char out[TIME_ISO_LEN + 1];
    memset(out, 'x', sizeof out);
    time_iso(us, out);
    assert_int_equal(strlen(out), TIME_ISO_LEN);
    if (strcmp(out, want) != 0)
        fail_msg("time_iso(%lld) = %s, want %s", (long long)us, out, want);
}

static void test_iso_known_values(void **state)
{
    (void)state;
    iso_is(0, "1970-01-01T00:00:00.000000Z");
    iso_is(1, "1970-01-01T00:00:00.000001Z");
    iso_is(999999, "1970-01-01T00:00:00.999999Z");
    iso_is(1000000, "1970-01-01T00:00:01.000000Z");
    iso_is(1700000000123456LL, "2023-11-14T22:13:20.123456Z");
    iso_is(1709208000000000LL, "2024-02-29T12:00:00.000000Z");
    iso_is(951782400000000LL, "2000-02-29T00:00:00.000000Z");
    iso_is(253402300799999999LL, "9999-12-31T23:59:59.999999Z");
    /* before the epoch the fraction still counts forward from the second */
    iso_is(-1, "1969-12-31T23:59:59.999999Z");
    iso_is(-1000000, "1969-12-31T23:59:59.000000Z");
    iso_is(-1500000, "1969-12-31T23:59:58.500000Z");
    iso_is(-86400000000LL, "1969-12-31T00:00:00.000000Z");
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t xs(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_iso_string_order_is_time_order(void **state)
{
    (void)state;
    const int64_t max = 253402300799999999LL; /* 9999-12-31 */
    char a[TIME_ISO_LEN + 1], b[TIME_ISO_LEN + 1];
    for (int i = 0; i < 20000; i++) {
        int64_t x = (int64_t)(xs() % (uint64_t)max), y = (int64_t)(xs() % (uint64_t)max);
        if (i % 3 == 0)
            y = x + (int64_t)(xs() % 3) - 1; /* neighbours */
        time_iso(x, a);
        time_iso(y, b);
        assert_int_equal(strlen(a), TIME_ISO_LEN);
        int c = strcmp(a, b);
        if ((c < 0) != (x < y) || (c == 0) != (x == y))
            fail_msg("%lld -> %s and %lld -> %s are out of order", (long long)x, a, (long long)y, b);
    }
    /* time_now_iso: the same shape, and now */
    time_now_iso(a);
    assert_int_equal(strlen(a), TIME_ISO_LEN);
    assert_int_equal(a[26], 'Z');
    int64_t parsed;
    assert_int_equal(time_parse_iso(a, &parsed), 0);
    int64_t now = time_now_us();
    assert_true(parsed <= now && now - parsed < 5000000);
}

static void parse_is(const char *s, int64_t want)
{
    int64_t got = -42;
    if (time_parse_iso(s, &got) != 0)
        fail_msg("time_parse_iso(\"%s\") failed", s);
    if (got != want)
        fail_msg("time_parse_iso(\"%s\") = %lld, want %lld", s, (long long)got, (long long)want);
}

static void test_parse_valid(void **state)
{
    (void)state;
    parse_is("1970-01-01T00:00:00Z", 0);
    parse_is("1970-01-01T00:00:00.000001Z", 1);
    parse_is("1970-01-01T00:00:00.5Z", 500000);
    parse_is("1970-01-01T00:00:00.1234567Z", 123456); /* beyond microseconds: cut */
    parse_is("2023-11-14T22:13:20.123456Z", 1700000000123456LL);
    parse_is("2023-11-14T22:13:20.123456z", 1700000000123456LL);
    parse_is("2023-11-14t22:13:20.123456Z", 1700000000123456LL);
    parse_is("2023-11-14 22:13:20.123456Z", 1700000000123456LL);
    parse_is("2023-11-14T22:13:20.123456", 1700000000123456LL); /* no zone: UTC */
    /* offsets */
    parse_is("2023-11-14T23:13:20.123456+01:00", 1700000000123456LL);
    parse_is("2023-11-14T20:43:20.123456-01:30", 1700000000123456LL);
    parse_is("2023-11-14T23:43:20.123456+0130", 1700000000123456LL);
    parse_is("2023-11-15T03:43:20+05:30", 1700000000000000LL);
    /* minutes only, bare date */
    parse_is("2023-11-14T22:13Z", 1699999980000000LL);
    parse_is("2024-01-01", 1704067200000000LL);
    /* leap days */
    parse_is("2024-02-29T12:00:00Z", 1709208000000000LL);
    parse_is("2000-02-29", 951782400000000LL);
    /* before the epoch */
    parse_is("1969-12-31T23:59:59.999999Z", -1);
    parse_is("1969-12-31T00:00:00Z", -86400000000LL);
}

static void test_parse_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "2023", "2023-11", "2023-1-01", "2023/11/14", "abcd-ef-gh", "20231114",
        "2023-13-01", "2023-00-10", "2023-01-00", "2023-01-32", "2023-04-31", "2023-06-31", "2023-02-30",
        "2023-02-29", "1900-02-29", "2100-02-29", /* not leap years */
        "2023-01-01T24:00:00Z", "2023-01-01T23:60:00Z", "2023-01-01T23:59:61Z",
        "2023-01-01T", "2023-01-01T10", "2023-01-01T10:", "2023-01-01T1:00:00Z", "2023-01-01T10:00:0Z",
        "2023-01-01T10:00:00.Z", "2023-01-01T10:00:00+1", "2023-01-01T10:00:00+01:", "2023-01-01T10:00:00+",
        "2023-01-01T10:00:00Zjunk", "2023-01-01T10:00:00Z ", "2023-01-01x", "2023-01-01T10:00:00.123456Q",
        " 2023-01-01", "2023-01-01T10:00:00ZZ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t out = 77;
        if (time_parse_iso(bad[i], &out) != -1)
            fail_msg("time_parse_iso accepted \"%s\" (%lld)", bad[i], (long long)out);
    }
    int64_t out;
    assert_int_equal(time_parse_iso(NULL, &out), -1);
}

static void test_parse_offset_range(void **state)
{
    (void)state;
    /* an offset is hours 00-23 and minutes 00-59 */
    static const char *const bad[] = {"2023-01-01T10:00:00+24:00", "2023-01-01T10:00:00+05:60",
                                      "2023-01-01T10:00:00-99:99"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t out = 77;
        if (time_parse_iso(bad[i], &out) != -1)
            fail_msg("time_parse_iso accepted the offset in \"%s\" (%lld)", bad[i], (long long)out);
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    const int64_t max = 253402300799999999LL;
    char s[TIME_ISO_LEN + 1];
    for (int i = 0; i < 20000; i++) {
        int64_t us = (int64_t)(xs() % (uint64_t)max);
        if (i % 4 == 0)
            us = -us / 1000; /* some before 1970 */
        time_iso(us, s);
        int64_t back = 0;
        if (time_parse_iso(s, &back) != 0 || back != us)
            fail_msg("%lld -> %s -> %lld", (long long)us, s, (long long)back);
    }
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t m1 = time_mono_ns();
    int64_t w = time_now_us();
    assert_true(w > 1600000000000000LL); /* after 2020 */
    int64_t m2 = time_mono_ns();
    assert_true(m2 >= m1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso_known_values),
        cmocka_unit_test(test_iso_string_order_is_time_order),
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_parse_offset_range),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests_name("timeutil", tests, NULL, NULL);
}
