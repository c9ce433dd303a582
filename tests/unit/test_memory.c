/* memory (src/memory/memory.h): reading model output into episodes, facts and decisions — well-formed
 * answers, the shapes models really produce (fences, prose, renamed keys, numbers as strings, percentages),
 * limits, and garbage refused; fact hashing; the conversation as prompts show it. */
#include "testutil.h"

#include "memory/memory.h"

typedef struct fx {
    arena a;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    arena_init(&f->a);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    arena_free(&f->a);
    free(f);
    return 0;
}

static int m1(fx *f, const char *text, int n_msgs, m1_episode **e, size_t *n)
{
    return m1_parse(text, strlen(text), n_msgs, &f->a, e, n);
}

static void episodes_well_formed(void **state)
{
    fx *f = *state;
    m1_episode *e;
    size_t n;
    assert_int_equal(m1(f,
                        "{\"episodes\": [{\"content\": \"  Alice told the assistant she adopted a dog named Rex. \","
                        " \"occurred_at\": \"2026-11-23\", \"participants\": [\"user\", \"assistant\", \"user\"],"
                        " \"messages\": [2, 1, 2]}]}",
                        3, &e, &n),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].content, "Alice told the assistant she adopted a dog named Rex.");
    assert_string_equal(e[0].occurred_at, "2026-11-23");
    assert_int_equal(e[0].n_participants, 2); /* distinct */
    assert_string_equal(e[0].participants[1], "assistant");
    assert_int_equal(e[0].n_refs, 2);
    assert_int_equal(e[0].refs[0], 1); /* ascending, distinct */
    assert_int_equal(e[0].refs[1], 2);
}

static void episodes_lenient(void **state)
{
    fx *f = *state;
    m1_episode *e;
    size_t n;
    /* fenced, prose around, renamed keys, refs as strings, a datetime, one episode as an object */
    assert_int_equal(m1(f,
                        "Sure! Here is the JSON:\n```json\n{\"episodes\": {\"summary\": \"Bob planned a trip\","
                        " \"date\": \"2026-12-01T09:00:00Z\", \"message_ids\": [\"[3]\", \"#1\", \"9\", 0]}}\n```\n"
                        "Let me know if you need more.",
                        3, &e, &n),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(e[0].content, "Bob planned a trip");
    assert_string_equal(e[0].occurred_at, "2026-12-01T09:00:00Z");
    assert_int_equal(e[0].n_refs, 2); /* 9 and 0 are out of range */
    assert_int_equal(e[0].refs[0], 1);
    assert_int_equal(e[0].refs[1], 3);

    /* a bare array; no refs -> every message; an unusable date -> NULL */
    assert_int_equal(m1(f, "[{\"content\": \"They talked\", \"occurred_at\": \"yesterday\"}]", 4, &e, &n), 0);
    assert_int_equal(n, 1);
    assert_null(e[0].occurred_at);
    assert_int_equal(e[0].n_refs, 4);

    /* nothing happened: an empty list is an answer */
    assert_int_equal(m1(f, "{\"episodes\": []}", 2, &e, &n), 0);
    assert_int_equal(n, 0);
}

static void episodes_garbage(void **state)
{
    fx *f = *state;
    m1_episode *e;
    size_t n;
    const char *bad[] = {
        "Sorry, I cannot help with that.",
        "{\"episodes\": [{\"content\": 42}, {\"content\": \"   \"}, \"text\"]}", /* only unusable items */
        "{\"episodes\": \"Alice adopted a dog\"}",                               /* wrong type */
        "{\"episodes\": [{\"content\": \"cut off",                              /* truncated */
        "{\"answer\": 1}",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = 99;
        assert_int_equal(m1(f, bad[i], 2, &e, &n), -1);
        assert_int_equal(n, 0);
    }
}

static void episodes_limits(void **state)
{
    fx *f = *state;
    char *big = malloc(200000);
    assert_non_null(big);
    size_t o = (size_t)sprintf(big, "{\"episodes\": [");
    for (int i = 0; i < 40; i++)
        o += (size_t)sprintf(big + o, "%s{\"content\": \"episode %d\"}", i ? "," : "", i);
    o += (size_t)sprintf(big + o, ", {\"content\": \"");
    for (int i = 0; i < 3000; i++) /* a 6000-byte text of two-byte characters */
        o += (size_t)sprintf(big + o, "\xc3\xa9\xc3\xa9");
    sprintf(big + o, "\"}]}");
    m1_episode *e;
    size_t n;
    assert_int_equal(m1(f, big, 1, &e, &n), 0);
    assert_int_equal(n, MEM_MAX_EPISODES);
    free(big);

    /* a long text is cut on a character boundary */
    char *one = malloc(20000);
    assert_non_null(one);
    o = (size_t)sprintf(one, "{\"episodes\": [{\"content\": \"a");
    for (int i = 0; i < 3000; i++)
        o += (size_t)sprintf(one + o, "\xc3\xa9");
    sprintf(one + o, "\"}]}");
    assert_int_equal(m1(f, one, 1, &e, &n), 0);
    assert_int_equal(n, 1);
    size_t len = strlen(e[0].content);
    assert_true(len <= MEM_TEXT_MAX && len >= MEM_TEXT_MAX - 1);
    assert_true(json_utf8_valid(e[0].content, len));
    free(one);
}

static void facts_read(void **state)
{
    fx *f = *state;
    const char *text =
        "```\n{\"facts\": ["
        "{\"content\": \"User prefers green tea to coffee.\", \"type\": \"Preferences\", \"confidence\": \"90%\","
        " \"entities\": [\"green tea\", \"coffee\", 7], \"messages\": [1]},"
        "{\"fact\": \"User has a dog named Rex\", \"category\": \"personal_fact\", \"confidence\": 85},"
        "{\"content\": \"User might visit Rome\", \"type\": \"wish\", \"confidence\": 0.3, \"messages\": \"2\"},"
        "\"User lives in Berlin\","
        "{\"content\": null}"
        "]}\n```";
    m2_fact *x;
    size_t n;
    assert_int_equal(m2_parse_facts(text, strlen(text), 2, &f->a, &x, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(x[0].type, "preference");
    assert_true(x[0].confidence > 0.89 && x[0].confidence < 0.91);
    assert_int_equal(x[0].n_entities, 2);
    assert_string_equal(x[0].entities[0], "green tea");
    assert_int_equal(x[0].n_refs, 1);
    assert_string_equal(x[1].content, "User has a dog named Rex");
    assert_string_equal(x[1].type, "personal");
    assert_true(x[1].confidence > 0.84 && x[1].confidence < 0.86);
    assert_int_equal(x[1].n_refs, 2); /* none named: the whole flush */
    assert_string_equal(x[2].type, "other");
    assert_true(x[2].confidence < 0.31);
    assert_int_equal(x[2].n_refs, 1);
    assert_int_equal(x[2].refs[0], 2);
    assert_string_equal(x[3].content, "User lives in Berlin");
    assert_true(x[3].confidence > 0.79 && x[3].confidence < 0.81); /* not given */

    assert_int_equal(m2_parse_facts("{\"facts\": []}", 13, 2, &f->a, &x, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(m2_parse_facts("no facts here", 13, 2, &f->a, &x, &n), -1);
    assert_int_equal(m2_parse_facts("{\"facts\": [1, 2]}", 17, 2, &f->a, &x, &n), -1);
    const char *nan = "{\"facts\": [{\"content\": \"x\", \"confidence\": \"NaN\"}]}";
    assert_int_equal(m2_parse_facts(nan, strlen(nan), 1, &f->a, &x, &n), 0);
    assert_true(x[0].confidence > 0.79 && x[0].confidence < 0.81); /* refused, so the default */
}

static void decisions_read(void **state)
{
    (void)state;
    m2_decision d[5];
    const char *text = "{\"decisions\": ["
                       "{\"fact\": 2, \"action\": \"UPDATE\", \"target\": \"F2\"},"
                       "{\"fact\": \"1\", \"action\": \"ignore\", \"target\": 1},"
                       "{\"fact\": 3, \"action\": \"invalidate\"},"          /* no target: add */
                       "{\"fact\": 4, \"action\": \"update\", \"target\": \"F9\"}," /* out of range: add */
                       "{\"fact\": 9, \"action\": \"ignore\", \"target\": \"F1\"}," /* no such fact */
                       "{\"fact\": 5, \"action\": \"shrug\", \"target\": \"F1\"}"   /* unknown: add */
                       "]}";
    assert_int_equal(m2_parse_decisions(text, strlen(text), 5, 2, d), 0);
    assert_int_equal(d[0].action, M2_IGNORE);
    assert_int_equal(d[0].target, 1);
    assert_int_equal(d[1].action, M2_UPDATE);
    assert_int_equal(d[1].target, 2);
    assert_int_equal(d[2].action, M2_ADD);
    assert_int_equal(d[3].action, M2_ADD);
    assert_int_equal(d[4].action, M2_ADD);
    assert_int_equal(d[4].target, 0);

    /* unnumbered decisions apply in order */
    const char *seq = "[{\"action\": \"ignore\", \"target\": \"F1\"}, {\"action\": \"add\"}]";
    assert_int_equal(m2_parse_decisions(seq, strlen(seq), 2, 1, d), 0);
    assert_int_equal(d[0].action, M2_IGNORE);
    assert_int_equal(d[1].action, M2_ADD);

    assert_int_equal(m2_parse_decisions("I think they are the same.", 26, 2, 1, d), -1);
    assert_int_equal(d[0].action, M2_ADD); /* reset even on failure */
}

static void fact_hash_normalises(void **state)
{
    (void)state;
    char a[65], b[65], c[65];
    mem_fact_hash("User prefers  green tea.", a);
    mem_fact_hash("  user PREFERS green\ttea ", b);
    mem_fact_hash("User prefers black tea", c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), 64);
}

static void conversation_lines(void **state)
{
    fx *f = *state;
    store_message m[2] = {
        {.id = "m1", .role = "user", .content = "I adopted a dog\nyesterday", .created_at = "2026-11-24T10:00:00.000Z"},
        {.id = "m2", .role = "assistant", .content = "Congratulations!", .created_at = "2026-11-24T10:00:01.000Z"},
    };
    char *s = mem_format_messages(&f->a, m, 2);
    assert_non_null(s);
    assert_string_equal(s, "[1] 2026-11-24T10:00:00.000Z user: I adopted a dog yesterday\n"
                           "[2] 2026-11-24T10:00:01.000Z assistant: Congratulations!\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(episodes_well_formed, setup, teardown),
        cmocka_unit_test_setup_teardown(episodes_lenient, setup, teardown),
        cmocka_unit_test_setup_teardown(episodes_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(episodes_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(facts_read, setup, teardown),
        cmocka_unit_test_setup_teardown(decisions_read, setup, teardown),
        cmocka_unit_test(fact_hash_normalises),
        cmocka_unit_test_setup_teardown(conversation_lines, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
