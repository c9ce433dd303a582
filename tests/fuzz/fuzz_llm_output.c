/* libFuzzer target for the memory layers' readers of model output (src/memory/memory.h): arbitrary bytes
 * as a model's answer through m1_parse, m2_parse_facts and m2_parse_decisions, with message and candidate
 * counts taken from the first bytes.
 * Checked: no crash or sanitizer report; every item read respects its limits (count, text length, valid
 * UTF-8, message references in range and ascending, confidence in [0,1], a fact type from the fixed set),
 * and every decision is an action in range whose target, when set, names an existing candidate. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/json.h"
#include "memory/memory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t max)
{
    if (!s)
        abort();
    size_t n = strlen(s);
    if (n == 0 || n > max || !json_utf8_valid(s, n))
        abort();
}

static void check_refs(const int *refs, size_t n, int n_msgs)
{
    for (size_t i = 0; i < n; i++)
        if (refs[i] < 1 || refs[i] > n_msgs || (i && refs[i] <= refs[i - 1]))
            abort();
    if (n_msgs > 0 && n == 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int n_msgs = 1 + data[0] % 12, n_cands = data[1] % 9;
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    arena a;
    arena_init(&a);

    m1_episode *e;
    size_t ne;
    if (m1_parse(text, len, n_msgs, &a, &e, &ne) == 0) {
        if (ne > MEM_MAX_EPISODES)
            abort();
        for (size_t i = 0; i < ne; i++) {
            check_text(e[i].content, MEM_TEXT_MAX);
            check_refs(e[i].refs, e[i].n_refs, n_msgs);
            if (e[i].n_participants > MEM_MAX_LIST)
                abort();
            for (size_t k = 0; k < e[i].n_participants; k++)
                check_text(e[i].participants[k], MEM_NAME_MAX);
        }
    } else if (ne != 0) {
        abort();
    }

    m2_fact *f;
    size_t nf;
    if (m2_parse_facts(text, len, n_msgs, &a, &f, &nf) == 0) {
        if (nf > MEM_MAX_FACTS)
            abort();
        for (size_t i = 0; i < nf; i++) {
            check_text(f[i].content, MEM_TEXT_MAX);
            check_refs(f[i].refs, f[i].n_refs, n_msgs);
            if (!(f[i].confidence >= 0 && f[i].confidence <= 1) || !f[i].type)
                abort();
            if (strcmp(f[i].type, "preference") && strcmp(f[i].type, "personal") && strcmp(f[i].type, "plan") &&
                strcmp(f[i].type, "decision") && strcmp(f[i].type, "other"))
                abort();
            for (size_t k = 0; k < f[i].n_entities; k++)
                check_text(f[i].entities[k], MEM_NAME_MAX);
        }
    }

    m2_decision d[12];
    m2_parse_decisions(text, len, n_msgs, n_cands, d);
    for (int i = 0; i < n_msgs; i++) {
        if (d[i].action < M2_ADD || d[i].action > M2_IGNORE || d[i].target < 0 || d[i].target > n_cands)
            abort();
        if ((d[i].action == M2_ADD) != (d[i].target == 0))
            abort();
    }

    char hash[65];
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, text, len);
        copy[len] = 0;
        mem_fact_hash(copy, hash);
        if (strlen(hash) != 64)
            abort();
        free(copy);
    }
    arena_free(&a);
    return 0;
}
