/*
 * apps/job/util.h - small helpers of the job library: suggestions for a
 * misspelt name, growing strings, 128-bit ids. Internal to apps/job/.
 */
#ifndef FLING_APPS_JOB_UTIL_H
#define FLING_APPS_JOB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fling/common.h>

/* fj_nearest returns the candidate nearest to word by edit distance, or
 * NULL if the nearest is more than a third of word's length (at least 2)
 * away. Borrows everything; returns one of cands. */
const char *fj_nearest(const char *word, const char *const *cands, size_t n);

/* fj_strdup copies s (NULL stays NULL); *oom is set when memory runs out.
 * Caller frees the copy with free(). */
char *fj_strdup(const char *s, bool *oom);

/* fj_say writes the formatted message into err (errlen bytes, always
 * terminated when errlen > 0); err may be NULL. */
void fj_say(char *err, size_t errlen, const char *fmt, ...) FL_PRINTF(3, 4);

/* A growing string (open_memstream would do, but the fuzzer and the
 * sanitizers like one allocator). */
typedef struct fj_buf {
    char *s;
    size_t len, cap;
    bool oom;
} fj_buf_t;

/* fj_buf_add appends the formatted text; on failure sets b->oom and keeps
 * what was there. */
void fj_buf_add(fj_buf_t *b, const char *fmt, ...) FL_PRINTF(2, 3);

/* fj_buf_addn appends n bytes of s. */
void fj_buf_addn(fj_buf_t *b, const char *s, size_t n);

/* fj_id_hash fills out[16] with a 128-bit hash of the n byte strings of
 * parts (each length-prefixed, so ("ab","c") and ("a","bc") differ):
 * deterministic, so a vertex keeps its id across plans of the same job. */
void fj_id_hash(uint8_t out[16], const char *const *parts, size_t n);

#endif
