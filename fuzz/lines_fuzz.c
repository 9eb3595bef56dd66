/*
 * lines_fuzz - libFuzzer target for source.text's line reader (a text
 * file is untrusted input): the file is read by n parallel instances with
 * a read buffer of b bytes, and the lines they hand on, instance after
 * instance, must be exactly the file's lines, each once, in order.
 *
 * Input: byte 0 gives n (1..8), byte 1 gives b (1..32, or 0 for the
 * default buffer), the rest is the file (in a memfd).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "task/task_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the instances handed on: the lines, each followed by '\n'. */
static char *got;
static size_t got_len, got_cap;

static int capture(fj_op_t *op, const char *rec, size_t len)
{
    if (memchr(rec, '\n', len))
        abort(); /* a record never holds a newline */
    if (got_len + len + 1 > got_cap) {
        got_cap = (got_len + len + 1) * 2;
        got = realloc(got, got_cap);
        if (!got)
            abort();
    }
    memcpy(got + got_len, rec, len);
    got[got_len + len] = '\n';
    got_len += len + 1;
    return FL_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned n = 1 + data[0] % 8;
    size_t b = data[1] % 33;
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    int fd = memfd_create("lines_fuzz", 0);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len)
        abort();
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    fj_source_text_set_buffer(b);
    got_len = 0;
    for (unsigned i = 0; i < n; i++) {
        fj_param_t p[] = {{"path", path}};
        fj_op_spec_t spec = {"lines", "source.text", p, 1};
        fj_task_t task;
        memset(&task, 0, sizeof(task));
        task.chain = &spec;
        task.n_ops = 1;
        task.subtask = i;
        task.parallelism = n;
        char err[256];
        fj_run_t run;
        memset(&run, 0, sizeof(run));
        run.task = &task;
        run.err = err;
        run.errlen = sizeof(err);
        run.report_every = UINT64_MAX;
        run.next_report = UINT64_MAX;
        fj_op_t sink;
        memset(&sink, 0, sizeof(sink));
        sink.push = capture;
        fj_op_t src;
        memset(&src, 0, sizeof(src));
        src.spec = &spec;
        src.run = &run;
        src.stats = &run.stats.ops[0];
        src.next = &sink;
        if (fj_source_text_setup(&src) != FL_OK || src.produce(&src) != FL_OK)
            abort();
        src.finish(&src, 1);
    }
    close(fd);
    /* The file's lines: the file itself, plus a '\n' if its last line has
     * none. */
    size_t want_len = len + (len > 0 && text[len - 1] != '\n');
    if (got_len != want_len || (len > 0 && memcmp(got, text, len) != 0))
        abort();
    return 0;
}
