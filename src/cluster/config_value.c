/*
 * config_value.c - the typed values of the configuration: parsing them as
 * Flink does (durations "10 s", sizes "10 mb", a bare number is ms or
 * bytes), writing them back, and the nearest known key of a misspelt one.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cluster/config_int.h"
#include "common/internal.h"

/* A unit: its names (lower case) and how many ms or bytes it is. */
typedef struct unit {
    const char *names[6];
    int64_t factor;
} unit_t;

/* Flink's TimeUtils units from ms up (fling keeps durations in ms). */
static const unit_t duration_units[] = {
    {{"d", "day", "days"}, 86400000},
    {{"h", "hour", "hours"}, 3600000},
    {{"min", "m", "minute", "minutes"}, 60000},
    {{"s", "sec", "secs", "second", "seconds"}, 1000},
    {{"ms", "milli", "millis", "millisecond", "milliseconds"}, 1},
};

/* Flink's MemorySize units (powers of 1024). */
static const unit_t size_units[] = {
    {{"tb", "t", "tebibytes"}, (int64_t)1 << 40},
    {{"gb", "g", "gibibytes"}, (int64_t)1 << 30},
    {{"mb", "m", "mebibytes"}, (int64_t)1 << 20},
    {{"kb", "k", "kibibytes"}, (int64_t)1 << 10},
    {{"b", "bytes"}, 1},
};

#define NUNITS(a) (sizeof(a) / sizeof(a)[0])

static const char *const duration_form =
    "a duration such as 10 s, 500 ms or 5 min (units ms, s, min, h, d; a "
    "bare number is ms)";
static const char *const size_form =
    "a size such as 10 mb, 64 kb or 10485760b (units b, kb, mb, gb, tb; a "
    "bare number is bytes)";

/* Parses "<digits>[ ]<unit>" with units (bare: factor 1) into *out.
 * False on anything else or on overflow of int64. */
static bool parse_with_unit(const char *p, const char *end, const unit_t *units,
                            size_t nunits, int64_t *out)
{
    if (p == end || !isdigit((unsigned char)*p))
        return false;
    int64_t n = 0;
    for (; p < end && isdigit((unsigned char)*p); p++) {
        int d = *p - '0';
        if (n > (INT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    while (p < end && *p == ' ')
        p++;
    if (p == end) {
        *out = n;
        return true;
    }
    size_t ulen = (size_t)(end - p);
    for (size_t u = 0; u < nunits; u++) {
        for (size_t k = 0; k < 6 && units[u].names[k]; k++) {
            const char *name = units[u].names[k];
            if (strlen(name) == ulen && strncasecmp(name, p, ulen) == 0) {
                if (n > INT64_MAX / units[u].factor)
                    return false;
                *out = n * units[u].factor;
                return true;
            }
        }
    }
    return false;
}

static bool parse_int(const char *p, const char *end, int64_t *out)
{
    bool neg = false;
    if (p < end && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    if (p == end)
        return false;
    int64_t n = 0;
    for (; p < end; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        int d = *p - '0';
        if (n > (INT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *out = neg ? -n : n;
    return true;
}

/* The choice of r that text names (case-insensitive), or NULL. */
static const char *find_choice(const char *choices, const char *text, char *buf,
                               size_t cap)
{
    const char *p = choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len < cap && strlen(text) == len &&
            strncasecmp(p, text, len) == 0) {
            memcpy(buf, p, len);
            buf[len] = '\0';
            return buf;
        }
        p += len + (bar ? 1 : 0);
    }
    return NULL;
}

size_t fl__config_utf8_next(const char *s, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n;
    uint32_t c, min;
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    } else if ((u[0] & 0xe0) == 0xc0) {
        n = 2, c = u[0] & 0x1f, min = 0x80;
    } else if ((u[0] & 0xf0) == 0xe0) {
        n = 3, c = u[0] & 0x0f, min = 0x800;
    } else if ((u[0] & 0xf8) == 0xf0) {
        n = 4, c = u[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        c = (c << 6) | (u[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/* True if text is valid UTF-8 (what a YAML file can hold, and so what the
 * printout can write back). */
static bool valid_utf8(const char *text)
{
    uint32_t cp;
    for (size_t n; *text; text += n)
        if ((n = fl__config_utf8_next(text, &cp)) == 0)
            return false;
    return true;
}

int fl__config_parse_value(const fl__config_row_t *r, const char *text,
                           const char *origin, fl__config_val_t *out, char *err,
                           size_t errcap)
{
    const char *name = r->pub.name;
    if (r->pub.type == FL_CONFIG_STRING) {
        char buf[64];
        const char *v = text;
        if (!valid_utf8(text)) {
            fl__say(err, errcap,
                    "Bad value for '%s' (%s): it is not valid UTF-8; write "
                    "the text in UTF-8.",
                    name, origin);
            return FL_EINVAL;
        }
        if (r->choices &&
            !(v = find_choice(r->choices, text, buf, sizeof buf))) {
            fl__say(err, errcap, "Bad value '%s' for '%s' (%s): expected %s.",
                    text, name, origin, r->pub.form);
            return FL_EINVAL;
        }
        out->s = fl__strdup(v);
        if (!out->s) {
            fl__say(err, errcap,
                    "Out of memory while loading the configuration.");
            return FL_ENOMEM;
        }
        return FL_OK;
    }
    /* Numbers and bools: surrounding blanks do not count, as in Flink. */
    const char *p = text, *end = text + strlen(text);
    while (p < end && isspace((unsigned char)*p))
        p++;
    while (end > p && isspace((unsigned char)end[-1]))
        end--;
    int64_t v = 0;
    bool ok = false;
    const char *how = NULL;
    switch (r->pub.type) {
    case FL_CONFIG_INT:
        ok = parse_int(p, end, &v);
        how = "an integer";
        break;
    case FL_CONFIG_BOOL:
        if ((size_t)(end - p) == 4 && strncasecmp(p, "true", 4) == 0)
            ok = true, v = 1;
        else if ((size_t)(end - p) == 5 && strncasecmp(p, "false", 5) == 0)
            ok = true, v = 0;
        how = "true or false";
        break;
    case FL_CONFIG_DURATION:
        ok =
            parse_with_unit(p, end, duration_units, NUNITS(duration_units), &v);
        how = duration_form;
        break;
    case FL_CONFIG_SIZE:
        ok = parse_with_unit(p, end, size_units, NUNITS(size_units), &v);
        how = size_form;
        break;
    case FL_CONFIG_STRING:
        break;
    }
    if (!ok) {
        if (r->pub.type == FL_CONFIG_BOOL)
            fl__say(err, errcap, "Bad value '%s' for '%s' (%s): expected %s.",
                    text, name, origin, how);
        else
            fl__say(err, errcap,
                    "Bad value '%s' for '%s' (%s): expected %s, %s.", text,
                    name, origin, r->pub.form, how);
        return FL_EINVAL;
    }
    if (r->pub.type != FL_CONFIG_BOOL &&
        (v < r->min || v > r->max || (v == 0 && r->no_zero))) {
        fl__say(err, errcap, "Bad value '%s' for '%s' (%s): expected %s.", text,
                name, origin, r->pub.form);
        return FL_EINVAL;
    }
    out->i = v;
    out->s = NULL;
    return FL_OK;
}

/* n in the largest unit of units that divides it exactly. */
static const char *format_with_unit(int64_t n, const unit_t *units,
                                    size_t nunits, char *buf, size_t cap)
{
    size_t u = nunits - 1;
    if (n != 0)
        for (u = 0; u < nunits - 1; u++)
            if (n % units[u].factor == 0)
                break;
    snprintf(buf, cap, "%lld %s", (long long)(n / units[u].factor),
             units[u].names[0]);
    return buf;
}

const char *fl__config_format_value(const fl__config_row_t *r,
                                    const fl__config_val_t *v, char *buf,
                                    size_t cap)
{
    switch (r->pub.type) {
    case FL_CONFIG_STRING:
        snprintf(buf, cap, "%s", v->s ? v->s : "");
        break;
    case FL_CONFIG_INT:
        snprintf(buf, cap, "%lld", (long long)v->i);
        break;
    case FL_CONFIG_BOOL:
        snprintf(buf, cap, "%s", v->i ? "true" : "false");
        break;
    case FL_CONFIG_DURATION:
        return format_with_unit(v->i, duration_units, NUNITS(duration_units),
                                buf, cap);
    case FL_CONFIG_SIZE:
        return format_with_unit(v->i, size_units, NUNITS(size_units), buf, cap);
    }
    return buf;
}

/* Levenshtein distance of a and b, case-insensitive, on their first
 * KEYMAX bytes (longer keys are not near anything anyway). */
#define KEYMAX 128

static size_t distance(const char *a, const char *b)
{
    size_t la = strnlen(a, KEYMAX), lb = strnlen(b, KEYMAX);
    size_t prev[KEYMAX + 1], cur[KEYMAX + 1];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) ==
                                  tolower((unsigned char)b[j - 1])
                              ? 0
                              : 1;
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            cur[j] = best;
        }
        memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
    }
    return prev[lb];
}

const char *fl__config_nearest(const char *key)
{
    const char *best = fl__config_rows[0].pub.name;
    size_t bestd = SIZE_MAX;
    for (size_t i = 0; i < fl__config_nrows; i++) {
        size_t d = distance(key, fl__config_rows[i].pub.name);
        if (d < bestd) {
            bestd = d;
            best = fl__config_rows[i].pub.name;
        }
    }
    return best;
}
