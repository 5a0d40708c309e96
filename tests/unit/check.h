/* check.h — the few macros the C unit tests share: CHECK counts, CHECK_DONE prints the
 * summary line ("N passed, M failed") and gives the exit code. */
#ifndef OE_TEST_CHECK_H
#define OE_TEST_CHECK_H

#include <stdio.h>

static int check_passed, check_failed;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (cond) {                                                                                                    \
            check_passed++;                                                                                            \
        } else {                                                                                                       \
            check_failed++;                                                                                            \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                       \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
        }                                                                                                              \
    } while (0)

#define CHECK_DONE()                                                                                                   \
    (printf("%d passed, %d failed\n", check_passed, check_failed), check_failed == 0 ? 0 : 1)

#endif
