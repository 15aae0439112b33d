/* A minimal test harness: CHECK records a failure with its location and
 * goes on, so one run reports every broken expectation; RUN runs a test
 * function; check_report() prints the closing line and gives the exit code. */
#ifndef NC_TEST_CHECK_H
#define NC_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_passes;
static int check_tests_failed;
static int check_tests_passed;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (cond) {                                                            \
      check_passes++;                                                      \
    } else {                                                               \
      check_failures++;                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,     \
              #cond);                                                      \
    }                                                                      \
  } while (0)

#define CHECK_INT(got, want)                                               \
  do {                                                                     \
    long long g_ = (long long)(got), w_ = (long long)(want);               \
    if (g_ == w_) {                                                        \
      check_passes++;                                                      \
    } else {                                                               \
      check_failures++;                                                    \
      fprintf(stderr, "%s:%d: %s == %lld, want %lld\n", __FILE__,          \
              __LINE__, #got, g_, w_);                                     \
    }                                                                      \
  } while (0)

#define CHECK_STR(got, want)                                               \
  do {                                                                     \
    const char *g_ = (got), *w_ = (want);                                  \
    if (g_ && w_ && strcmp(g_, w_) == 0) {                                 \
      check_passes++;                                                      \
    } else {                                                               \
      check_failures++;                                                    \
      fprintf(stderr, "%s:%d: %s == \"%s\", want \"%s\"\n", __FILE__,      \
              __LINE__, #got, g_ ? g_ : "(null)", w_ ? w_ : "(null)");     \
    }                                                                      \
  } while (0)

#define RUN(fn)                                                            \
  do {                                                                     \
    int before_ = check_failures;                                          \
    fn();                                                                  \
    if (check_failures == before_) {                                       \
      check_tests_passed++;                                                \
      fprintf(stderr, "ok   %s\n", #fn);                                   \
    } else {                                                               \
      check_tests_failed++;                                                \
      fprintf(stderr, "FAIL %s\n", #fn);                                   \
    }                                                                      \
  } while (0)

static inline int check_report(void) {
  printf("%d passed, %d failed\n", check_tests_passed, check_tests_failed);
  return check_tests_failed ? 1 : 0;
}

#endif
