/*
 * prof.c - the profiling counters of prof.h (empty unless built with
 * FL_PROF_COUNTERS).
 */
#include "common/prof.h"

#ifdef FL_PROF_COUNTERS
#include <inttypes.h>
#include <stdio.h>

_Thread_local uint64_t fl__prof[FL__PROF_N];

void fl__prof_dump(unsigned worker)
{
    static const char *const names[] = {
#define FL__PROF_NAME(n) #n,
        FL__PROF_LIST(FL__PROF_NAME)};
    char line[1024];
    int len = snprintf(line, sizeof line, "prof worker %u:", worker);
    for (unsigned i = 0; i < FL__PROF_N && len > 0 && (size_t)len < sizeof line;
         i++)
        if (fl__prof[i] != 0)
            len += snprintf(line + len, sizeof line - (size_t)len,
                            " %s=%" PRIu64, names[i], fl__prof[i]);
    fprintf(stderr, "%s\n", line);
    for (unsigned i = 0; i < FL__PROF_N; i++)
        fl__prof[i] = 0;
}
#else
typedef int fl__prof_empty; /* ISO C: a translation unit is not empty */
#endif
