/*
 * jobfile_fuzz - libFuzzer target for job files (untrusted text from a
 * user, and from the wire once a job travels to the Dispatcher): the YAML
 * walk, the rules of a job, the substitution, the three graphs, the
 * printers. A parse either succeeds, and then the job written as JSON
 * parses back to the same JSON and plans or fails with a reason, or fails
 * with FL_EINVAL, a reason and no job.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job/graph.h"
#include "job/job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Plans job and prints everything to a sink; a plan that cannot be made
 * says why. */
static void plan(const fj_job_t *job)
{
    char err[1024] = "";
    fj_stream_graph_t *sg = NULL;
    int rc = fj_stream_graph_build(job, &sg, err, sizeof err);
    if (rc != FL_OK) {
        if (rc != FL_EINVAL || err[0] == '\0' || sg)
            abort();
        return;
    }
    static const fj_id_t id = {{1}};
    fj_job_graph_t *jg = NULL;
    if (fj_job_graph_build(sg, &id, &jg) != FL_OK)
        abort();
    /* Bound the ExecutionGraph: parallelism goes up to 32768 a vertex. */
    size_t total = 0;
    for (size_t i = 0; i < jg->n_vertices; i++)
        total += (size_t)jg->vertices[i].parallelism;
    FILE *sink = fopen("/dev/null", "w");
    if (!sink)
        abort();
    fj_stream_graph_print(sg, sink);
    fj_job_graph_print(jg, sink);
    (void)fj_job_check_runnable(jg, err, sizeof err);
    if (total <= 4096) {
        fj_exec_graph_t *eg = NULL;
        if (fj_exec_graph_build(jg, &eg) != FL_OK || eg->n_vertices != total)
            abort();
        fj_exec_graph_print(eg, sink);
        fj_plan_print_dot(eg, sink);
        for (size_t i = 0; i < eg->n_vertices; i++) {
            fj_task_spec_t t;
            if (fj_exec_graph_task(eg, i, &t) != FL_OK || t.chain_len == 0)
                abort();
        }
        fj_exec_graph_free(eg);
    }
    fclose(sink);
    fj_job_graph_free(jg);
    fj_stream_graph_free(sg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024] = "";
    fj_job_t *job = NULL;
    int rc = fj_job_parse((const char *)data, size, "fuzz.yaml", &job, err,
                          sizeof err);
    if (rc != FL_OK) {
        if (rc != FL_EINVAL || err[0] == '\0' || job)
            abort();
        return 0;
    }
    char *j1 = NULL, *j2 = NULL;
    size_t len = 0;
    if (fj_job_to_json(job, &j1, &len) != FL_OK)
        abort();
    fj_job_t *back = NULL;
    if (fj_job_parse(j1, len, "json", &back, err, sizeof err) != FL_OK) {
        fprintf(stderr, "round trip failed: %s\n%s", err, j1);
        abort();
    }
    if (fj_job_to_json(back, &j2, NULL) != FL_OK || strcmp(j1, j2) != 0)
        abort();
    plan(job);
    free(j1);
    free(j2);
    fj_job_free(back);
    fj_job_free(job);
    return 0;
}
