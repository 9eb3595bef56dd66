/*
 * util.c - suggestions, strings and the id hash of the job library.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job/util.h"

/* Levenshtein distance of a and b, capped at cap + 1 (beyond that the
 * word is no suggestion anyway). */
static size_t distance(const char *a, const char *b, size_t cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return cap + 1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            if (up + 1 < best)
                best = up + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *fj_nearest(const char *word, const char *const *cands, size_t n)
{
    size_t cap = strlen(word) / 3;
    if (cap < 2)
        cap = 2;
    const char *best = NULL;
    size_t bestd = cap + 1;
    for (size_t i = 0; i < n; i++) {
        size_t d = distance(word, cands[i], cap);
        if (d < bestd) {
            bestd = d;
            best = cands[i];
        }
    }
    return best;
}

char *fj_strdup(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *oom = true;
    return c;
}

void fj_say(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool reserve(fj_buf_t *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void fj_buf_addn(fj_buf_t *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void fj_buf_add(fj_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* splitmix64's finalizer: spreads every input bit over the word. */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void fj_id_hash(uint8_t out[16], const char *const *parts, size_t n)
{
    /* Two FNV-1a lanes with different bases, each finished by mix(). */
    uint64_t h[2] = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL};
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(parts[i]);
        for (int l = 0; l < 2; l++) {
            for (size_t k = 0; k < sizeof len; k++)
                h[l] = (h[l] ^ ((len >> (8 * k)) & 0xff)) * 0x100000001b3ULL;
            for (size_t k = 0; k < len; k++)
                h[l] = (h[l] ^ (uint8_t)parts[i][k]) * 0x100000001b3ULL;
        }
    }
    uint64_t a = mix(h[0]), b = mix(h[1] ^ a);
    for (int k = 0; k < 8; k++) {
        out[k] = (uint8_t)(a >> (56 - 8 * k));
        out[8 + k] = (uint8_t)(b >> (56 - 8 * k));
    }
}
