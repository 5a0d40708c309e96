/* check.h — the few macros the C unit tests share: CHECK counts (an optional printf-style
 * message explains a failure; without one the condition's text is printed), CHECK_DONE
 * prints the summary line ("N passed, M failed") and gives the exit code. */
#ifndef OE_TEST_CHECK_H
#define OE_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int check_passed, check_failed;

static void check_(int ok, const char *expr, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void check_(int ok, const char *expr, const char *file, int line, const char *fmt, ...)
{
    if (ok) {
        check_passed++;
        return;
    }
    check_failed++;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    if (fmt[1] == '\0') { /* fmt is "\001" + the caller's message, if any */
        fputs(expr, stderr);
    } else {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt + 1, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
}

#define CHECK(cond, ...) check_(!!(cond), #cond, __FILE__, __LINE__, "\001" __VA_ARGS__)
#define CHECK_PASS()     (check_passed++)

#define CHECK_DONE() (printf("%d passed, %d failed\n", check_passed, check_failed), check_failed == 0 ? 0 : 1)

#endif
