/* log — see log.h. */
#define _GNU_SOURCE /* fopencookie */
#include "log/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

#define LINE_MAX_BYTES 4096
#define MAX_PREFIXES   8

static int log_json;
static int log_level = OE_LOG_INFO;
static const char *level_names[] = {"debug", "info", "warn", "error"};

void oe_log_setup(int json, int level)
{
    log_json = json;
    log_level = level;
}

int oe_log_level_from_name(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    if (strcmp(name, "warning") == 0)
        return OE_LOG_WARN;
    return -1;
}

const char *oe_log_level_name(int level)
{
    return level >= 0 && level < 4 ? level_names[level] : "info";
}

int oe_log_enabled(int level)
{
    return level >= log_level;
}

/* JSON string body escaping (RFC 8259): quotes, backslash and control bytes. */
static void put_json_escaped(oe_util_buf_t *l, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            oe_util_buf_put(l, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            oe_util_buf_printf(l, "\\u%04x", c);
        } else {
            oe_util_buf_put(l, s, 1);
        }
    }
}

/* Text values are quoted when they hold spaces, quotes or '='; control bytes are escaped
 * so a hostile path can never forge a log line. */
static void put_text_value(oe_util_buf_t *l, const char *s)
{
    int quote = *s == '\0' || strpbrk(s, " \"=") != NULL;
    if (quote)
        oe_util_buf_put(l, "\"", 1);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (quote && (c == '"' || c == '\\'))
            oe_util_buf_printf(l, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            oe_util_buf_printf(l, "\\x%02x", c);
        else
            oe_util_buf_put(l, s, 1);
    }
    if (quote)
        oe_util_buf_put(l, "\"", 1);
}

/* ---- recent events ------------------------------------------------------------------- */

static pthread_mutex_t recent_lock = PTHREAD_MUTEX_INITIALIZER;
static char prefixes[MAX_PREFIXES][32];
static unsigned nprefixes; /* read without the lock: published with release ordering */
static oe_log_event_t recent[OE_LOG_RECENT_MAX];
static unsigned recent_next, recent_count;

void oe_log_remember(const char *prefix)
{
    pthread_mutex_lock(&recent_lock);
    unsigned n = nprefixes;
    if (n < MAX_PREFIXES) {
        snprintf(prefixes[n], sizeof(prefixes[n]), "%s", prefix);
        __atomic_store_n(&nprefixes, n + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&recent_lock);
}

static int remembered(const char *event)
{
    unsigned n = __atomic_load_n(&nprefixes, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++)
        if (strncmp(event, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    return 0;
}

static void remember(int level, const char *event, int64_t at_ms, va_list ap)
{
    oe_log_event_t e = {.at_ms = at_ms, .level = level};
    snprintf(e.event, sizeof(e.event), "%s", event);
    size_t pos = 0, room = sizeof(e.fields) - 1; /* one byte for the empty key that ends the list */
    const char *key;
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *val = va_arg(ap, const char *);
        if (val == NULL)
            val = "";
        size_t kl = strlen(key), vl = strlen(val);
        if (pos + kl + 2 > room)
            break;
        if (pos + kl + vl + 2 > room)
            vl = room - pos - kl - 2; /* cut the value, keep the field */
        memcpy(e.fields + pos, key, kl + 1);
        pos += kl + 1;
        memcpy(e.fields + pos, val, vl);
        e.fields[pos + vl] = '\0';
        pos += vl + 1;
    }
    e.fields[pos] = '\0';
    pthread_mutex_lock(&recent_lock);
    recent[recent_next] = e;
    recent_next = (recent_next + 1) % OE_LOG_RECENT_MAX;
    if (recent_count < OE_LOG_RECENT_MAX)
        recent_count++;
    pthread_mutex_unlock(&recent_lock);
}

size_t oe_log_recent(const char *prefix, oe_log_event_t *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&recent_lock);
    for (unsigned i = 0; i < recent_count && n < max; i++) {
        const oe_log_event_t *e = &recent[(recent_next + OE_LOG_RECENT_MAX - 1 - i) % OE_LOG_RECENT_MAX];
        if (prefix == NULL || strncmp(e->event, prefix, strlen(prefix)) == 0)
            out[n++] = *e;
    }
    pthread_mutex_unlock(&recent_lock);
    return n;
}

int oe_log_event_next(const oe_log_event_t *e, size_t *pos, const char **key, const char **value)
{
    size_t p = *pos;
    if (p >= sizeof(e->fields) || e->fields[p] == '\0')
        return -1;
    *key = e->fields + p;
    p += strlen(*key) + 1;
    *value = e->fields + p;
    *pos = p + strlen(*value) + 1;
    return 0;
}

const char *oe_log_event_field(const oe_log_event_t *e, const char *key)
{
    size_t pos = 0;
    const char *k, *v;
    while (oe_log_event_next(e, &pos, &k, &v) == 0)
        if (strcmp(k, key) == 0)
            return v;
    return NULL;
}

/* ---- lines --------------------------------------------------------------------------- */

void oe_logv(int level, const char *event, va_list ap)
{
    int keep = remembered(event);
    if (!oe_log_enabled(level) && !keep)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (keep) {
        va_list copy;
        va_copy(copy, ap);
        remember(level, event, (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, copy);
        va_end(copy);
        if (!oe_log_enabled(level))
            return;
    }
    char buf[LINE_MAX_BYTES];
    oe_util_buf_t l;
    oe_util_buf_init(&l, buf, sizeof(buf)); /* its NUL byte's room is kept for the newline */
    struct tm tm;
    char ts[40];
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int)(tv.tv_usec / 1000));

    if (log_json) {
        oe_util_buf_printf(&l, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"", ts, oe_log_level_name(level));
        put_json_escaped(&l, event);
        oe_util_buf_put(&l, "\"", 1);
    } else {
        oe_util_buf_printf(&l, "%s %s %s", ts, oe_log_level_name(level), event);
    }
    const char *key;
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *val = va_arg(ap, const char *);
        if (val == NULL)
            val = "";
        if (log_json) {
            oe_util_buf_puts(&l, ",\"");
            put_json_escaped(&l, key);
            oe_util_buf_puts(&l, "\":\"");
            put_json_escaped(&l, val);
            oe_util_buf_put(&l, "\"", 1);
        } else {
            oe_util_buf_printf(&l, " %s=", key);
            put_text_value(&l, val);
        }
    }
    if (log_json)
        oe_util_buf_put(&l, "}", 1);
    buf[l.len] = '\n'; /* over the NUL: the builder always leaves that byte */
    ssize_t w = write(STDERR_FILENO, buf, l.len + 1);
    (void)w;
}

void oe_log(int level, const char *event, ...)
{
    va_list ap;
    va_start(ap, event);
    oe_logv(level, event, ap);
    va_end(ap);
}

void oe_logf(int level, const char *event, const char *fmt, ...)
{
    if (!oe_log_enabled(level) && !remembered(event))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    oe_log(level, event, "msg", msg, NULL);
}

/* ---- stdio's stderr ------------------------------------------------------------------- */

/* stdio holds the stream's lock while it calls these, so the partial line needs no other. */
static char lib_line[1024];
static size_t lib_len;

static void lib_emit(void)
{
    while (lib_len > 0 && (lib_line[lib_len - 1] == '\r' || lib_line[lib_len - 1] == ' '))
        lib_len--;
    if (lib_len == 0)
        return;
    lib_line[lib_len] = '\0';
    /* an unknown HTTP/2 frame type must be ignored (RFC 9113 5.5): not worth a warning */
    int level = strncmp(lib_line, "skipping frame", 14) == 0 ? OE_LOG_DEBUG : OE_LOG_WARN;
    oe_log(level, "library_message", "msg", lib_line, NULL);
    lib_len = 0;
}

static ssize_t lib_write(void *cookie, const char *data, size_t n)
{
    (void)cookie;
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n') {
            lib_emit();
        } else {
            if (lib_len == sizeof(lib_line) - 1)
                lib_emit(); /* a very long line goes out in pieces */
            lib_line[lib_len++] = data[i];
        }
    }
    return (ssize_t)n;
}

static int lib_close(void *cookie)
{
    (void)cookie;
    lib_emit();
    return 0;
}

int oe_log_capture_stdio(void)
{
    cookie_io_functions_t io = {.write = lib_write, .close = lib_close};
    FILE *f = fopencookie(NULL, "w", io);
    if (f == NULL)
        return -1;
    setvbuf(f, NULL, _IOLBF, 0);
    fflush(stderr);
    stderr = f; /* glibc: stderr is a plain variable; libraries' fprintf(stderr) now land here */
    return 0;
}
