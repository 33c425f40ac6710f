/* unit.h: the smallest test framework that prints what failed.
 *
 * A test file defines `static void test_x(void)` functions using CHECK(...) and lists them in main()
 * with RUN(test_x); main returns unit_finish(). Output ends with `unit: N passed, N failed`. */
#ifndef MOCKUPSTREAM_UNIT_H
#define MOCKUPSTREAM_UNIT_H

#include <stdio.h>

static int unit_checks_failed_in_test;
static int unit_tests_passed, unit_tests_failed;

#define CHECK(cond)                                                                                     \
    do {                                                                                                \
        if (!(cond)) {                                                                                  \
            printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);                           \
            unit_checks_failed_in_test++;                                                               \
        }                                                                                               \
    } while (0)

#define RUN(fn)                                                                                         \
    do {                                                                                                \
        unit_checks_failed_in_test = 0;                                                                 \
        fn();                                                                                           \
        if (unit_checks_failed_in_test) {                                                               \
            printf("FAIL %s\n", #fn);                                                                   \
            unit_tests_failed++;                                                                        \
        } else {                                                                                        \
            printf("ok   %s\n", #fn);                                                                   \
            unit_tests_passed++;                                                                        \
        }                                                                                               \
    } while (0)

static inline int unit_finish(void)
{
    printf("unit: %d passed, %d failed\n", unit_tests_passed, unit_tests_failed);
    return unit_tests_failed != 0;
}

#endif
