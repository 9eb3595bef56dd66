/*
 * sevens_job.h - a job "sevens" that writes the numbers 1 to 200000 that
 * hold "77" into part files under its argument "output", and the check of
 * that output.
 */
#ifndef CLUSTER_SEVENS_JOB_H
#define CLUSTER_SEVENS_JOB_H

#include "../task/task_fixture.h"

/* Writes the job file "sevens.json" of this parallelism into dir;
 * returns its path (the caller frees it). */
static inline char *sevens_job_write(const char *dir, unsigned parallelism)
{
    char text[512];
    int n = snprintf(text, sizeof text,
                     "{\"name\": \"sevens\", \"parallelism\": %u,"
                     " \"params\": {\"output\": null},"
                     " \"operators\": ["
                     "  {\"id\": \"n\", \"type\": \"source.sequence\","
                     "   \"params\": {\"from\": \"1\", \"to\": \"200000\"}},"
                     "  {\"id\": \"sevens\", \"type\": \"filter.contains\","
                     "   \"params\": {\"pattern\": \"77\"}},"
                     "  {\"id\": \"out\", \"type\": \"sink.text\","
                     "   \"params\": {\"path\": \"${output}\"}}]}",
                     parallelism);
    assert_true(n > 0 && (size_t)n < sizeof text);
    char *job = path_in(dir, "sevens.json");
    write_file(job, text, (size_t)n);
    return job;
}

/* Asserts that the nparts part files under out hold, in order, the
 * numbers 1 to 200000 that hold "77", one a line. */
static inline void sevens_job_assert_output(const char *out, unsigned nparts)
{
    tbuf_t want = {0}, got = {0};
    tbuf_add(&want, "", 0);
    for (unsigned i = 1; i <= 200000; i++) {
        char n[16];
        int k = snprintf(n, sizeof n, "%u\n", i);
        if (strstr(n, "77") != NULL)
            tbuf_add(&want, n, (size_t)k);
    }
    concat_parts(out, nparts, &got);
    assert_int_equal(want.len, got.len);
    assert_memory_equal(want.data, got.data, want.len);
    tbuf_free(&want);
    tbuf_free(&got);
}

#endif
