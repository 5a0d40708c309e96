/* test_metrics_log — the one /metrics writer (HELP/TYPE once per family, a second writer of
 * a family dropped, names and labels checked, label values escaped, integers exact, output
 * bounded line by line), the worker-block sum, and pkg/log's remembered events and stdio
 * stderr capture. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "log/log.h"
#include "metrics/metrics.h"

static int mode;

static void section(void *data, oe_metrics_out_t *o)
{
    (void)data;
    if (mode == 1) {
        if (oe_metrics_family(o, "t_labels", OE_METRICS_GAUGE, "Help with \\ and\nnewline.") == 0) {
            oe_metrics_sample(o, 1, "name", "a\"b\\c\nd", NULL);
            oe_metrics_sample(o, 2.5, "name", "x", "other", "y", NULL);
            oe_metrics_sample(o, 9007199254740991.0, NULL);
            oe_metrics_sample(o, -3, "bad-label", "v", NULL); /* dropped */
            oe_metrics_sample(o, 4, "__reserved", "v", NULL); /* dropped */
        }
        /* a second writer of a family: refused, and its samples never appear */
        CHECK(oe_metrics_family(o, "t_labels", OE_METRICS_GAUGE, "Again.") == -1);
        oe_metrics_sample(o, 99, NULL);
        CHECK(oe_metrics_family(o, "ott_edge_requests_total", OE_METRICS_COUNTER, "Duplicate of the workers'.") == -1);
        CHECK(oe_metrics_family(o, "9bad", OE_METRICS_GAUGE, "Bad name.") == -1);
        oe_metrics_counter(o, "t_after_total", "After the refused ones.", 7);
    } else if (mode == 2) {
        if (oe_metrics_family(o, "t_many", OE_METRICS_GAUGE, "Many samples.") == 0) {
            char v[32];
            for (int i = 0; i < 20000; i++) {
                snprintf(v, sizeof(v), "%d", i);
                oe_metrics_sample(o, i, "i", v, NULL);
            }
        }
    }
}

static void test_writer(void)
{
    oe_log_setup(0, OE_LOG_ERROR + 1); /* the writer's own complaints are expected here */
    oe_metrics_add_section(section, NULL);
    oe_metrics_worker(0)->requests[OE_PROTO_HTTP2][2] = 5;
    oe_metrics_worker(1)->requests[OE_PROTO_HTTP2][2] = 6;
    oe_metrics_set_worker_count(2);
    mode = 1;
    size_t len = 0;
    char *t = oe_metrics_render(&len);
    CHECK(t != NULL && len == strlen(t));
    if (t == NULL)
        return;
    CHECK(strstr(t, "# HELP t_labels Help with \\\\ and\\nnewline.\n# TYPE t_labels gauge\n") != NULL, "%s", t);
    CHECK(strstr(t, "t_labels{name=\"a\\\"b\\\\c\\nd\"} 1\n") != NULL, "escaped label value");
    CHECK(strstr(t, "t_labels{name=\"x\",other=\"y\"} 2.5\n") != NULL);
    CHECK(strstr(t, "t_labels 9007199254740991\n") != NULL, "integers exactly");
    CHECK(strstr(t, "bad-label") == NULL && strstr(t, "__reserved") == NULL && strstr(t, " 99\n") == NULL);
    CHECK(strstr(t, "Again.") == NULL && strstr(t, "Duplicate") == NULL && strstr(t, "9bad") == NULL);
    CHECK(strstr(t, "# TYPE t_after_total counter\nt_after_total 7\n") != NULL);
    CHECK(strstr(t, "ott_edge_requests_total{protocol=\"http2\",code=\"2xx\"} 11\n") != NULL, "summed over workers");
    /* every family once */
    int helps = 0;
    for (const char *p = t; (p = strstr(p, "# HELP t_labels ")) != NULL; p++)
        helps++;
    CHECK(helps == 1);
    free(t);

    oe_metrics_worker_t s;
    oe_metrics_worker(0)->heartbeat_ms = 500;
    oe_metrics_worker(1)->heartbeat_ms = 300;
    oe_metrics_sum(&s);
    CHECK(s.requests[OE_PROTO_HTTP2][2] == 11 && s.heartbeat_ms == 300, "sum: %llu, heartbeat %llu",
          (unsigned long long)s.requests[OE_PROTO_HTTP2][2], (unsigned long long)s.heartbeat_ms);

    /* beyond 256 KiB: whole lines only, and the text stays parseable */
    mode = 2;
    t = oe_metrics_render(&len);
    CHECK(t != NULL && len < 256 * 1024 && len > 200 * 1024, "len %zu", len);
    if (t != NULL) {
        CHECK(len > 0 && t[len - 1] == '\n', "ends mid-line");
        CHECK(strstr(t, "t_many{i=\"0\"} 0\n") != NULL && strstr(t, "t_many{i=\"19999\"}") == NULL);
        free(t);
    }
}

static void test_recent(void)
{
    oe_log_setup(0, OE_LOG_ERROR + 1); /* nothing written: remembered events do not need the level */
    oe_log_remember("test_");
    oe_log(OE_LOG_INFO, "other_event", "k", "v", NULL);
    oe_log(OE_LOG_WARN, "test_one", "a", "1", "b", NULL, NULL);
    oe_log_event_t ev[OE_LOG_RECENT_MAX + 4];
    size_t n = oe_log_recent("test_", ev, 4);
    CHECK(n == 1 && strcmp(ev[0].event, "test_one") == 0 && ev[0].level == OE_LOG_WARN, "n %zu", n);
    CHECK(n == 1 && strcmp(oe_log_event_field(&ev[0], "a"), "1") == 0 &&
          strcmp(oe_log_event_field(&ev[0], "b"), "") == 0 && oe_log_event_field(&ev[0], "c") == NULL);
    CHECK(oe_log_recent("other_", ev, 4) == 0, "not remembered");

    /* a long value is cut to fit; the fields stay well-formed */
    char big[2000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    oe_log(OE_LOG_ERROR, "test_big", "first", "1", "big", big, "after", "lost", NULL);
    n = oe_log_recent("test_big", ev, 1);
    const char *v = n == 1 ? oe_log_event_field(&ev[0], "big") : NULL;
    CHECK(v != NULL && strlen(v) > 300 && strlen(v) < sizeof(ev[0].fields), "cut value %zu", v ? strlen(v) : 0);
    CHECK(n == 1 && oe_log_event_field(&ev[0], "after") == NULL);

    /* bounded: the newest OE_LOG_RECENT_MAX, newest first */
    char num[16];
    for (int i = 0; i < OE_LOG_RECENT_MAX + 10; i++) {
        snprintf(num, sizeof(num), "%d", i);
        oe_log(OE_LOG_DEBUG, "test_n", "i", num, NULL);
    }
    n = oe_log_recent(NULL, ev, OE_LOG_RECENT_MAX + 4);
    CHECK(n == OE_LOG_RECENT_MAX, "%zu kept", n);
    snprintf(num, sizeof(num), "%d", OE_LOG_RECENT_MAX + 9);
    CHECK(strcmp(oe_log_event_field(&ev[0], "i"), num) == 0, "newest first");
    CHECK(strcmp(oe_log_event_field(&ev[OE_LOG_RECENT_MAX - 1], "i"), "10") == 0, "oldest kept");
}

static void test_capture(void)
{
    int p[2], saved = dup(STDERR_FILENO);
    if (pipe(p) != 0 || saved < 0) {
        CHECK(0, "pipe");
        return;
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    dup2(p[1], STDERR_FILENO);
    oe_log_setup(1, OE_LOG_DEBUG);
    int rc = oe_log_capture_stdio();
    fprintf(stderr, "skipping frame (type:%d)\n", 22);
    fprintf(stderr, "socket_close: ");
    fprintf(stderr, "epoll(DEL) returned error %d\r\n", 9);
    fflush(stderr);
    char out[2048] = "";
    ssize_t n = read(p[0], out, sizeof(out) - 1);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[0]);
    close(p[1]);
    out[n > 0 ? n : 0] = '\0';
    CHECK(rc == 0);
    const char *second = strchr(out, '\n');
    CHECK(strstr(out, "\"level\":\"debug\",\"event\":\"library_message\",\"msg\":\"skipping frame (type:22)\"}\n") !=
              NULL,
          "%s", out);
    CHECK(second != NULL &&
              strstr(second, "\"level\":\"warn\",\"event\":\"library_message\",\"msg\":\"socket_close: epoll(DEL) "
                             "returned error 9\"}\n") != NULL,
          "%s", out);
    int lines = 0;
    for (const char *q = out; *q; q++)
        lines += *q == '\n';
    CHECK(lines == 2 && out[0] == '{', "%s", out);
}

int main(void)
{
    test_writer();
    test_recent();
    test_capture();
    return CHECK_DONE();
}
