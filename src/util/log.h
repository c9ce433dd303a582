/* log — JSON-lines logging to stderr.
 *
 * Owns: the process-wide log level, set once by log_init() before any thread starts and read-only after.
 * Each call writes one line {"ts":"…","level":"info","msg":"…"} with a single write(2), so lines from
 * concurrent threads never interleave. Messages are printf-formatted and JSON-escaped. */
#ifndef MEMFUSE_LOG_H
#define MEMFUSE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_OFF = 4 };

void log_init(enum log_level level);
int log_parse_level(const char *s, enum log_level *out); /* 0 on success */
int log_enabled(enum log_level level);
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
