/*
 * small_job.h - a job of one task that writes the numbers 1 to 100 into
 * part files under its argument "output", and the check of that output.
 */
#ifndef CLUSTER_SMALL_JOB_H
#define CLUSTER_SMALL_JOB_H

#include "../task/task_fixture.h"

/* The job file's text (its argument "output"). */
static const char small_job[] =
    "{\"name\": \"small\", \"parallelism\": 1,"
    " \"params\": {\"output\": null},"
    " \"operators\": ["
    "  {\"id\": \"n\", \"type\": \"source.sequence\","
    "   \"params\": {\"from\": \"1\", \"to\": \"100\"}},"
    "  {\"id\": \"out\", \"type\": \"sink.text\","
    "   \"params\": {\"path\": \"${output}\"}}]}";

/* Writes the job file "small.json" into dir; returns its path (the
 * caller frees it). */
static inline char *small_job_write(const char *dir)
{
    char *job = path_in(dir, "small.json");
    write_file(job, small_job, strlen(small_job));
    return job;
}

/* Asserts that the one part file under out holds the lines 1 to 100. */
static inline void small_job_assert_output(const char *out)
{
    tbuf_t want = {0}, got = {0};
    for (int i = 1; i <= 100; i++) {
        char l[16];
        int n = snprintf(l, sizeof l, "%d\n", i);
        tbuf_add(&want, l, (size_t)n);
    }
    concat_parts(out, 1, &got);
    assert_int_equal(want.len, got.len);
    assert_memory_equal(want.data, got.data, want.len);
    tbuf_free(&want);
    tbuf_free(&got);
}

#endif
