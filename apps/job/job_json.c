/*
 * job_json.c - a job written back as a JSON job file (fj_job_to_json), so
 * that it can travel as text and be parsed on the other side.
 */
#include <stdlib.h>
#include <string.h>

#include "job/job_int.h"
#include "job/util.h"

/* The length of the valid UTF-8 sequence at s (1 to 4) and its code point
 * in *cp, or 0 when s does not start one. */
static size_t utf8(const unsigned char *s, unsigned *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
    if (n == 0 || s[0] > 0xf4)
        return 0;
    unsigned c = s[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/* Appends s as a JSON string that YAML reads back unchanged: control and
 * C1 characters, YAML's extra line breaks and non-characters escaped;
 * bytes that are no UTF-8 become U+FFFD (only a builder can pass them). */
static void put_str(fj_buf_t *b, const char *s)
{
    fj_buf_addn(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned cp;
        size_t n = utf8(p, &cp);
        if (n == 0) {
            fj_buf_add(b, "\\ufffd");
            p++;
            continue;
        }
        if (cp == '"' || cp == '\\')
            fj_buf_add(b, "\\%c", (char)cp);
        else if (cp == '\n')
            fj_buf_add(b, "\\n");
        else if (cp == '\t')
            fj_buf_add(b, "\\t");
        else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 ||
                 cp == 0x2029 || cp == 0xfeff || cp == 0xfffe || cp == 0xffff)
            fj_buf_add(b, "\\u%04x", cp);
        else
            fj_buf_addn(b, (const char *)p, n);
        p += n;
    }
    fj_buf_addn(b, "\"", 1);
}

int fj_job_to_json(const fj_job_t *job, char **out, size_t *len)
{
    if (!job || !out)
        return FL_EINVAL;
    *out = NULL;
    fj_buf_t b = {0};
    fj_buf_add(&b, "{\n  \"name\": ");
    put_str(&b, job->name);
    fj_buf_add(&b, ",\n  \"parallelism\": %d", job->parallelism);
    if (job->library) {
        fj_buf_add(&b, ",\n  \"library\": ");
        put_str(&b, job->library);
    }
    if (job->n_params) {
        fj_buf_add(&b, ",\n  \"params\": {");
        for (size_t i = 0; i < job->n_params; i++) {
            const fj_jparam_t *p = &job->params[i];
            const char *v = p->value ? p->value : p->def;
            fj_buf_add(&b, "%s\n    ", i ? "," : "");
            put_str(&b, p->name);
            fj_buf_add(&b, ": ");
            if (v)
                put_str(&b, v);
            else
                fj_buf_add(&b, "null");
        }
        fj_buf_add(&b, "\n  }");
    }
    fj_buf_add(&b, ",\n  \"operators\": [");
    for (size_t i = 0; i < job->n_ops; i++) {
        const fj_op_t *op = &job->ops[i];
        fj_buf_add(&b, "%s\n    {\"id\": ", i ? "," : "");
        put_str(&b, op->id);
        fj_buf_add(&b, ", \"type\": ");
        put_str(&b, op->type);
        if (op->input) {
            fj_buf_add(&b, ", \"input\": ");
            put_str(&b, op->input);
        }
        if (op->has_parallelism)
            fj_buf_add(&b, ", \"parallelism\": %d", op->parallelism);
        if (op->n_params) {
            fj_buf_add(&b, ", \"params\": {");
            for (size_t k = 0; k < op->n_params; k++) {
                fj_buf_add(&b, "%s", k ? ", " : "");
                put_str(&b, op->params[k].key);
                fj_buf_add(&b, ": ");
                put_str(&b, op->params[k].value);
            }
            fj_buf_add(&b, "}");
        }
        fj_buf_add(&b, "}");
    }
    fj_buf_add(&b, "\n  ]\n}\n");
    if (b.oom) {
        free(b.s);
        return FL_ENOMEM;
    }
    *out = b.s;
    if (len)
        *len = b.len;
    return FL_OK;
}
