/* pg_notify — keeping several server processes on one PostgreSQL database coherent.
 *
 * Every process caches per-user state (vector indexes, query answers). After a write of a user, the
 * process that wrote calls notify_user: NOTIFY memfuse_changes '<token>:<user id>' ('*' for everything).
 * listen starts a thread with its own connection (not from the pool) that LISTENs on the channel and hands
 * every notification whose token is not this process's to the callback, which drops that user's cached
 * state so it reloads from the database. If the listening connection breaks, notifications may have been
 * missed: after reconnecting the thread reports '*'. NOTIFY is delivered on commit and notifications are
 * sent after the write committed, so a receiver that reloads sees the write. */
#include "store/pg/pg.h"
#include "util/log.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHANNEL "memfuse_changes"

static int op_notify_user(store *base, const char *user_id)
{
    pg_store *s = PGS(base);
    pg_conn *c = pg_reader(s);
    if (!c)
        return STORE_UNAVAILABLE;
    char payload[160];
    snprintf(payload, sizeof payload, "%s:%s", s->token, user_id);
    const char *params[1] = {payload};
    int rc;
    PGresult *r = pg_run(c, "SELECT pg_notify('" CHANNEL "', $1)", 1, params, &rc);
    PQclear(r);
    pg_reader_done(s, c);
    return rc;
}

static void deliver(pg_store *s, const char *payload)
{
    const char *colon = strchr(payload, ':');
    if (!colon || (size_t)(colon - payload) != strlen(s->token) || strncmp(payload, s->token, strlen(s->token)) == 0)
        return; /* malformed, or our own */
    s->listen_cb(s->listen_ctx, colon + 1);
}

static void *listen_main(void *arg)
{
    pg_store *s = arg;
    int first = 1;
    while (!atomic_load(&s->listen_stop)) {
        PGconn *conn = PQconnectdb(s->dsn);
        PGresult *r = conn && PQstatus(conn) == CONNECTION_OK ? PQexec(conn, "LISTEN " CHANNEL) : NULL;
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
            PQclear(r);
            PQfinish(conn);
            struct timespec ts = {1, 0};
            nanosleep(&ts, NULL);
            continue;
        }
        PQclear(r);
        if (!first)
            s->listen_cb(s->listen_ctx, "*"); /* anything may have changed while we were not listening */
        first = 0;
        while (!atomic_load(&s->listen_stop)) {
            struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
            int n = poll(&pfd, 1, 250);
            if (n < 0)
                continue;
            if (n > 0 && !PQconsumeInput(conn)) {
                log_warn("postgres: the LISTEN connection broke (%s); reconnecting", PQerrorMessage(conn));
                break;
            }
            PGnotify *note;
            while ((note = PQnotifies(conn))) {
                deliver(s, note->extra);
                PQfreemem(note);
            }
        }
        PQfinish(conn);
    }
    return NULL;
}

static int op_listen(store *base, void (*cb)(void *ctx, const char *user_id), void *ctx)
{
    pg_store *s = PGS(base);
    if (s->listening)
        return STORE_ERROR;
    s->listen_cb = cb;
    s->listen_ctx = ctx;
    atomic_store(&s->listen_stop, 0);
    if (pthread_create(&s->listen_thread, NULL, listen_main, s) != 0)
        return STORE_ERROR;
    s->listening = 1;
    return STORE_OK;
}

void pg_listen_stop(pg_store *s)
{
    if (!s->listening)
        return;
    atomic_store(&s->listen_stop, 1);
    pthread_join(s->listen_thread, NULL);
    s->listening = 0;
}

void pg_ops_notify(store_ops *ops)
{
    ops->notify_user = op_notify_user;
    ops->listen = op_listen;
}
