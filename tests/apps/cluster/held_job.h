/*
 * held_job.h - a job of one task whose user function ("hold" of
 * udf_hold_lib) blocks on a FIFO: a sequence from 1 through a map "h"
 * into part files under a scratch folder's "out". The task reads the
 * FIFO (HOLD_FIFO of its TaskManager) until a writer closes it, whatever
 * its cancel flag says.
 */
#ifndef CLUSTER_HELD_JOB_H
#define CLUSTER_HELD_JOB_H

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../task/task_fixture.h"

typedef struct held_job {
    char *dir, *fifo, *out, *job; /* job: the file "<name>.json" */
    char text[2048];              /* the job file's text */
} held_job_t;

/* Makes the scratch folder, its FIFO "fifo" and the job file of the job
 * `name` counting from 1 to `to`. Free with held_job_free. */
static inline void held_job_write(held_job_t *h, const char *name,
                                  const char *to)
{
    h->dir = scratch();
    h->fifo = path_in(h->dir, "fifo");
    h->out = path_in(h->dir, "out");
    char file[128];
    snprintf(file, sizeof file, "%s.json", name);
    h->job = path_in(h->dir, file);
    assert_int_equal(0, mkfifo(h->fifo, 0600));
    int n = snprintf(h->text, sizeof h->text,
                     "{\"name\": \"%s\", \"parallelism\": 1,"
                     " \"library\": \"%s\", \"operators\": ["
                     "{\"id\": \"n\", \"type\": \"source.sequence\","
                     " \"params\": {\"from\": \"1\", \"to\": \"%s\"}},"
                     "{\"id\": \"h\", \"type\": \"map\","
                     " \"params\": {\"function\": \"hold\"}},"
                     "{\"id\": \"out\", \"type\": \"sink.text\","
                     " \"params\": {\"path\": \"%s\"}}]}",
                     name, UDF_HOLD_LIB, to, h->out);
    assert_true(n > 0 && (size_t)n < sizeof h->text);
    write_file(h->job, h->text, (size_t)n);
}

/* Opens the FIFO for writing; returns its descriptor. Blocks until a
 * hold_open has it open for reading: the task then reads until the
 * descriptor is closed. */
static inline int held_job_open(const held_job_t *h)
{
    int fd = open(h->fifo, O_WRONLY);
    assert_true(fd >= 0);
    return fd;
}

/* Opens the FIFO for writing and closes it: every hold_open blocked on it
 * returns. Blocks until one reader has it open. */
static inline void held_job_release(const held_job_t *h)
{
    close(held_job_open(h));
}

/* Removes the scratch folder and frees the paths. */
static inline void held_job_free(held_job_t *h)
{
    free(h->fifo);
    free(h->out);
    free(h->job);
    rm_scratch(h->dir);
}

#endif
