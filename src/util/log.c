/* log — see log.h. */
#include "util/log.h"
#include "util/timeutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static enum log_level g_level = LOG_INFO; /* written once by log_init() before threads start */

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void log_init(enum log_level level) { g_level = level; }

int log_enabled(enum log_level level) { return level >= g_level && level < LOG_OFF; }

int log_parse_level(const char *s, enum log_level *out)
{
    for (int i = 0; i <= LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

void log_write(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    char line[4608];
    char ts[TIME_ISO_LEN + 1];
    time_now_iso(ts);
    size_t n = (size_t)snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                                level_names[level]);
    for (const unsigned char *p = (const unsigned char *)msg; *p && n < sizeof line - 8; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            line[n++] = '\\';
            line[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(line + n, 8, "\\u%04x", c);
        } else {
            line[n++] = (char)c;
        }
    }
    memcpy(line + n, "\"}\n", 3);
    n += 3;
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
