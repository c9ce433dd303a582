/* pg_vectors — the embedding pipeline's view of the PostgreSQL store: units to embed, vectors stored as
 * bytea (little-endian float32, with model and dimension; pgvector is not used) and searched in the
 * in-process index, and hit records for dense results. Mirrors sq_vectors.c: vectors hang off their
 * unit's seq and go with it (ON DELETE CASCADE); a text update deletes the vector (trigger); vectors_put
 * checks the unit's version so a vector computed from an older text is never stored. Episodes and facts
 * (the LLM layers, pg_layers.c) are units like the others; of facts only current ones (status 0): a retired
 * fact is left out of every operation here and its vector is deleted when it retires (trigger facts_au). */
#include "store/pg/pg.h"

#include <stdlib.h>
#include <string.h>

/* Per unit type (enum store_hit_type): messages, knowledge, episodes, current facts. */
static const char *const UNEMBEDDED[STORE_UNIT_TYPES] = {
    "SELECT m.seq, m.id, m.user_id, m.session_id, s.agent_id, m.content, m.updated_at"
    " FROM messages m JOIN sessions s ON s.id = m.session_id"
    " WHERE m.seq > $2 AND NOT EXISTS (SELECT 1 FROM message_vectors v WHERE v.seq = m.seq AND v.model = $1)"
    " ORDER BY m.seq LIMIT $3",
    "SELECT k.seq, k.id, k.user_id, NULL, NULL, k.content, k.updated_at FROM knowledge k"
    " WHERE k.seq > $2 AND NOT EXISTS (SELECT 1 FROM knowledge_vectors v WHERE v.seq = k.seq AND v.model = $1)"
    " ORDER BY k.seq LIMIT $3",
    "SELECT e.seq, e.id, e.user_id, e.session_id, e.agent_id, e.content, e.updated_at FROM episodes e"
    " WHERE e.seq > $2 AND NOT EXISTS (SELECT 1 FROM episode_vectors v WHERE v.seq = e.seq AND v.model = $1)"
    " ORDER BY e.seq LIMIT $3",
    "SELECT x.seq, x.id, x.user_id, x.session_id, x.agent_id, x.content, x.updated_at FROM facts x"
    " WHERE x.seq > $2 AND x.status = 0"
    " AND NOT EXISTS (SELECT 1 FROM fact_vectors v WHERE v.seq = x.seq AND v.model = $1)"
    " ORDER BY x.seq LIMIT $3",
};

static const char *const UNITS_GET[STORE_UNIT_TYPES] = {
    "SELECT m.seq, m.id, m.user_id, m.session_id, s.agent_id, m.content, m.updated_at"
    " FROM unnest($1::text[]) WITH ORDINALITY AS q(id, ord) JOIN messages m ON m.id = q.id"
    " JOIN sessions s ON s.id = m.session_id ORDER BY q.ord",
    "SELECT k.seq, k.id, k.user_id, NULL, NULL, k.content, k.updated_at"
    " FROM unnest($1::text[]) WITH ORDINALITY AS q(id, ord) JOIN knowledge k ON k.id = q.id ORDER BY q.ord",
    "SELECT e.seq, e.id, e.user_id, e.session_id, e.agent_id, e.content, e.updated_at"
    " FROM unnest($1::text[]) WITH ORDINALITY AS q(id, ord) JOIN episodes e ON e.id = q.id ORDER BY q.ord",
    "SELECT x.seq, x.id, x.user_id, x.session_id, x.agent_id, x.content, x.updated_at"
    " FROM unnest($1::text[]) WITH ORDINALITY AS q(id, ord) JOIN facts x ON x.id = q.id AND x.status = 0"
    " ORDER BY q.ord",
};

static int valid_type(int type) { return type >= 0 && type < STORE_UNIT_TYPES; }

static int read_unit(PGresult *r, int row, arena *a, void *dst)
{
    store_unit *u = dst;
    u->seq = pg_get_i64(r, row, 0);
    u->id = pg_dup(a, r, row, 1);
    u->user_id = pg_dup(a, r, row, 2);
    u->session_id = pg_dup(a, r, row, 3);
    u->agent_id = pg_dup(a, r, row, 4);
    u->text = pg_dup(a, r, row, 5);
    u->version = pg_dup(a, r, row, 6);
    return u->id && u->user_id && u->text && u->version ? STORE_OK : STORE_ERROR;
}

static void set_type(store_unit *u, size_t n, enum store_hit_type t)
{
    for (size_t i = 0; i < n; i++)
        u[i].type = t;
}

static int op_units_unembedded(store *s, enum store_hit_type type, const char *model, int64_t after, int limit,
                               arena *a, store_unit **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!valid_type((int)type))
        return STORE_ERROR;
    const char *p[3] = {model, pg_itoa(a, after), pg_itoa(a, limit)};
    if (!p[1] || !p[2])
        return STORE_ERROR;
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    int rc = pg_collect(c, UNEMBEDDED[type], 3, p, a, sizeof **out, read_unit, (void **)out, n);
    pg_reader_done(PGS(s), c);
    if (rc == STORE_OK)
        set_type(*out, *n, type);
    return rc;
}

static int op_units_get(store *s, enum store_hit_type type, const char *const *ids, size_t n, arena *a,
                        store_unit **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!valid_type((int)type))
        return STORE_ERROR;
    const char *p[1] = {pg_text_array(a, ids, n)};
    if (!p[0])
        return STORE_ERROR;
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    int rc = pg_collect(c, UNITS_GET[type], 1, p, a, sizeof **out, read_unit, (void **)out, n_out);
    pg_reader_done(PGS(s), c);
    if (rc == STORE_OK)
        set_type(*out, *n_out, type);
    return rc;
}

static int read_id(PGresult *r, int row, arena *a, void *dst)
{
    const char **id = dst;
    *id = pg_dup(a, r, row, 0);
    return *id ? STORE_OK : STORE_ERROR;
}

static int op_users_recent(store *s, int limit, arena *a, const char ***ids, size_t *n)
{
    const char *p[1] = {pg_itoa(a, limit)};
    if (!p[0])
        return STORE_ERROR;
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    int rc = pg_collect(c, "SELECT user_id FROM rounds GROUP BY user_id ORDER BY max(created_at) DESC LIMIT $1", 1, p,
                        a, sizeof **ids, read_id, (void **)ids, n);
    pg_reader_done(PGS(s), c);
    return rc;
}

static int job_clear(pg_conn *c, void *arg)
{
    (void)arg;
    return pg_exec(c, "DELETE FROM message_vectors; DELETE FROM knowledge_vectors; DELETE FROM episode_vectors;"
                      " DELETE FROM fact_vectors");
}

static int op_vectors_clear(store *s) { return pg_write(PGS(s), job_clear, NULL); }

/* bytea text input: "\x" and two hex digits per byte */
static char *hex_bytea(arena *a, const void *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *h = arena_alloc(a, 2 * len + 3);
    if (!h)
        return NULL;
    const unsigned char *b = data;
    h[0] = '\\';
    h[1] = 'x';
    for (size_t i = 0; i < len; i++) {
        h[2 + 2 * i] = digits[b[i] >> 4];
        h[3 + 2 * i] = digits[b[i] & 15];
    }
    h[2 + 2 * len] = '\0';
    return h;
}

static int unhex(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* Decodes bytea hex output into exactly len bytes at out; -1 if it is not that. */
static int bytea_decode(const char *t, size_t tlen, void *out, size_t len)
{
    if (tlen != 2 + 2 * len || t[0] != '\\' || t[1] != 'x')
        return -1;
    unsigned char *o = out;
    for (size_t i = 0; i < len; i++) {
        int hi = unhex(t[2 + 2 * i]), lo = unhex(t[3 + 2 * i]);
        if (hi < 0 || lo < 0)
            return -1;
        o[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

typedef struct put_job {
    const store_unit *units;
    size_t n;
    const float *vecs;
    int dim;
    const char *model;
    size_t *stored;
    arena a;
} put_job;

static int job_put(pg_conn *c, void *arg)
{
    put_job *j = arg;
    static const char *const SQL[STORE_UNIT_TYPES] = {
        "INSERT INTO message_vectors(seq, model, dim, vec)"
        " SELECT seq, $2, $3, $4::bytea FROM messages WHERE id = $1 AND updated_at = $5"
        " ON CONFLICT (seq) DO UPDATE SET model = excluded.model, dim = excluded.dim, vec = excluded.vec",
        "INSERT INTO knowledge_vectors(seq, model, dim, vec)"
        " SELECT seq, $2, $3, $4::bytea FROM knowledge WHERE id = $1 AND updated_at = $5"
        " ON CONFLICT (seq) DO UPDATE SET model = excluded.model, dim = excluded.dim, vec = excluded.vec",
        "INSERT INTO episode_vectors(seq, model, dim, vec)"
        " SELECT seq, $2, $3, $4::bytea FROM episodes WHERE id = $1 AND updated_at = $5"
        " ON CONFLICT (seq) DO UPDATE SET model = excluded.model, dim = excluded.dim, vec = excluded.vec",
        "INSERT INTO fact_vectors(seq, model, dim, vec)"
        " SELECT seq, $2, $3, $4::bytea FROM facts WHERE id = $1 AND updated_at = $5 AND status = 0"
        " ON CONFLICT (seq) DO UPDATE SET model = excluded.model, dim = excluded.dim, vec = excluded.vec",
    };
    const char *dim = pg_itoa(&j->a, j->dim);
    if (!dim)
        return STORE_ERROR;
    size_t stored = 0;
    for (size_t i = 0; i < j->n; i++) {
        if (!valid_type((int)j->units[i].type) || !j->units[i].id || !j->units[i].version)
            return STORE_ERROR;
        const char *hex = hex_bytea(&j->a, j->vecs + (size_t)j->dim * i, sizeof(float) * (size_t)j->dim);
        if (!hex)
            return STORE_ERROR;
        const char *p[5] = {j->units[i].id, j->model, dim, hex, j->units[i].version};
        long changed = 0;
        int rc = pg_cmd(c, SQL[j->units[i].type], 5, p, &changed);
        if (rc != STORE_OK)
            return rc;
        stored += changed > 0;
    }
    *j->stored = stored;
    return STORE_OK;
}

static int op_vectors_put(store *s, const store_unit *units, size_t n, const float *vecs, int dim, const char *model,
                          size_t *stored)
{
    *stored = 0;
    if (!n)
        return STORE_OK;
    put_job j = {.units = units, .n = n, .vecs = vecs, .dim = dim, .model = model, .stored = stored};
    arena_init(&j.a);
    int rc = pg_write(PGS(s), job_put, &j);
    arena_free(&j.a);
    return rc;
}

static int op_vectors_of_user(store *s, const char *user_id, const char *model, int dim, arena *a, store_vector **out,
                              size_t *n)
{
    *out = NULL;
    *n = 0;
    const char *p[3] = {user_id, model, pg_itoa(a, dim)};
    if (!p[2])
        return STORE_ERROR;
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    int rc;
    PGresult *r = pg_run(c,
        "SELECT 0, m.id, m.session_id, s.agent_id, v.vec FROM messages m JOIN message_vectors v ON v.seq = m.seq"
        " JOIN sessions s ON s.id = m.session_id WHERE m.user_id = $1 AND v.model = $2 AND v.dim = $3"
        " UNION ALL "
        "SELECT 1, k.id, NULL, NULL, v.vec FROM knowledge k JOIN knowledge_vectors v ON v.seq = k.seq"
        " WHERE k.user_id = $1 AND v.model = $2 AND v.dim = $3"
        " UNION ALL "
        "SELECT 2, e.id, e.session_id, e.agent_id, v.vec FROM episodes e JOIN episode_vectors v ON v.seq = e.seq"
        " WHERE e.user_id = $1 AND v.model = $2 AND v.dim = $3"
        " UNION ALL "
        "SELECT 3, x.id, x.session_id, x.agent_id, v.vec FROM facts x JOIN fact_vectors v ON v.seq = x.seq"
        " WHERE x.user_id = $1 AND x.status = 0 AND v.model = $2 AND v.dim = $3",
        3, p, &rc);
    pg_reader_done(PGS(s), c);
    if (!r)
        return rc;
    int rows = PQntuples(r);
    size_t bytes = sizeof(float) * (size_t)dim;
    store_vector *v = arena_alloc(a, (size_t)(rows ? rows : 1) * sizeof *v);
    for (int i = 0; v && i < rows && rc == STORE_OK; i++) {
        store_vector *e = &v[i];
        memset(e, 0, sizeof *e);
        e->u.type = (enum store_hit_type)pg_get_int(r, i, 0);
        e->u.id = pg_dup(a, r, i, 1);
        e->u.user_id = user_id;
        e->u.session_id = pg_dup(a, r, i, 2);
        e->u.agent_id = pg_dup(a, r, i, 3);
        float *f = arena_alloc(a, bytes ? bytes : 1);
        if (!f || !e->u.id || bytea_decode(PQgetvalue(r, i, 4), (size_t)PQgetlength(r, i, 4), f, bytes) != 0)
            rc = STORE_ERROR;
        e->vec = f;
    }
    PQclear(r);
    if (!v)
        rc = STORE_ERROR;
    if (rc == STORE_OK) {
        *out = v;
        *n = (size_t)rows;
    }
    return rc;
}

int pg_read_hit(PGresult *r, int row, arena *a, void *dst)
{
    store_hit *h = dst;
    memset(h, 0, sizeof *h);
    int type = pg_get_int(r, row, 0);
    if (!valid_type(type))
        return STORE_ERROR;
    h->type = (enum store_hit_type)type;
    h->id = pg_dup(a, r, row, 1);
    h->content = pg_dup(a, r, row, 2);
    h->role = pg_dup(a, r, row, 3);
    h->created_at = pg_dup(a, r, row, 4);
    h->updated_at = pg_dup(a, r, row, 5);
    h->session_id = pg_dup(a, r, row, 6);
    h->session_name = pg_dup(a, r, row, 7);
    h->agent_id = pg_dup(a, r, row, 8);
    h->occurred_at = pg_dup(a, r, row, 9);
    h->source_ids = pg_dup(a, r, row, 10);
    h->fact_type = pg_dup(a, r, row, 11);
    h->entities = pg_dup(a, r, row, 12);
    h->valid_from = pg_dup(a, r, row, 13);
    h->confidence = PQgetisnull(r, row, 14) ? 0 : strtod(PQgetvalue(r, row, 14), NULL);
    if (PQnfields(r) > 15)
        h->score = strtod(PQgetvalue(r, row, 15), NULL);
    return h->id && h->content ? STORE_OK : STORE_ERROR;
}

static int op_hits_get(store *s, enum store_hit_type type, const char *const *ids, size_t n, arena *a, store_hit **out,
                       size_t *n_out)
{
    static const char *const SQL[STORE_UNIT_TYPES] = {
        "SELECT 0, m.id, m.content, m.role, m.created_at, m.updated_at, m.session_id, s.name, s.agent_id,"
        " " PG_HIT_NO_LAYER_COLS
        " FROM unnest($1::text[]) WITH ORDINALITY AS q(id, ord) JOIN messages m ON m.id = q.id"
        " JOIN sessions s ON s.id = m.session_id ORDER BY q.ord",
        "SELECT 1, k.id, k.content, NULL, k.created_at, k.updated_at, NULL, NULL, NULL, " PG_HIT_NO_LAYER_COLS
        " FROM unnest($1::text[]) WITH ORDINALITY AS q(id, ord) JOIN knowledge k ON k.id = q.id ORDER BY q.ord",
        "SELECT " PG_HIT_EPISODE_COLS
        " FROM unnest($1::text[]) WITH ORDINALITY AS q(id, ord) JOIN episodes e ON e.id = q.id"
        " LEFT JOIN sessions s ON s.id = e.session_id ORDER BY q.ord",
        "SELECT " PG_HIT_FACT_COLS
        " FROM unnest($1::text[]) WITH ORDINALITY AS q(id, ord) JOIN facts x ON x.id = q.id AND x.status = 0"
        " LEFT JOIN sessions s ON s.id = x.session_id ORDER BY q.ord",
    };
    *out = NULL;
    *n_out = 0;
    if (!valid_type((int)type))
        return STORE_ERROR;
    const char *p[1] = {pg_text_array(a, ids, n)};
    if (!p[0])
        return STORE_ERROR;
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    int rc = pg_collect(c, SQL[type], 1, p, a, sizeof **out, pg_read_hit, (void **)out, n_out);
    pg_reader_done(PGS(s), c);
    return rc;
}

void pg_ops_vectors(store_ops *ops)
{
    ops->units_unembedded = op_units_unembedded;
    ops->units_get = op_units_get;
    ops->vectors_put = op_vectors_put;
    ops->users_recent = op_users_recent;
    ops->vectors_clear = op_vectors_clear;
    ops->vectors_of_user = op_vectors_of_user;
    ops->hits_get = op_hits_get;
}
