/*
 * tests/apps/task/task_throughput.c - the task runner's throughput on a
 * 100 MB file: source.text -> filter.contains -> sink.text, parallelism 1
 * and 4 (subtasks run one after the other), printed in MB/s of input. Not
 * a test (nothing is asserted): run it by hand.
 *
 *   task_throughput [MB]     (default 100; files in $TMPDIR or /tmp)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "task/task.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long mb = argc > 1 ? atol(argv[1]) : 100;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[512], input[600], out[600];
    snprintf(dir, sizeof(dir), "%s/fling-throughput-XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(input, sizeof(input), "%s/in.txt", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    FILE *f = fopen(input, "w");
    if (!f) {
        perror(input);
        return 1;
    }
    /* Lines of 20 to 119 bytes; one in ten holds the pattern. */
    unsigned long long written = 0, target = (unsigned long long)mb << 20;
    unsigned seed = 1;
    char line[128];
    while (written < target) {
        seed = seed * 1103515245u + 12345u;
        int len = 20 + (int)((seed >> 16) % 100);
        for (int i = 0; i < len; i++)
            line[i] = (char)('a' + (i * 7 + (int)(seed >> 8)) % 26);
        if ((seed >> 20) % 10 == 0)
            memcpy(line + 5, "fling", 5);
        line[len] = '\n';
        fwrite(line, 1, (size_t)len + 1, f);
        written += (unsigned long long)len + 1;
    }
    fclose(f);
    fj_param_t src_p[] = {{"path", input}};
    fj_param_t grep_p[] = {{"pattern", "fling"}};
    fj_param_t sink_p[] = {{"path", out}};
    fj_op_spec_t chain[] = {
        {"lines", "source.text", src_p, 1},
        {"grep", "filter.contains", grep_p, 1},
        {"out", "sink.text", sink_p, 1},
    };
    fj_param_t words_p[] = {{"function", "words"}};
    fj_op_spec_t words[] = {
        {"lines", "source.text", src_p, 1},
        {"words", "flatmap", words_p, 1},
        {"out", "sink.text", sink_p, 1},
    };
    const struct {
        const char *name;
        const fj_op_spec_t *chain;
        unsigned n;
    } runs[] = {{"grep", chain, 1}, {"grep", chain, 4}, {"words", words, 1}};
    for (size_t k = 0; k < 3; k++) {
        unsigned n = runs[k].n;
        uint64_t lines = 0, kept = 0;
        double t0 = now_s();
        for (unsigned i = 0; i < n; i++) {
            fj_task_t t;
            memset(&t, 0, sizeof(t));
            t.chain = runs[k].chain;
            t.n_ops = 3;
            t.subtask = i;
            t.parallelism = n;
            fj_task_stats_t st;
            char err[512];
            if (fj_task_run(&t, &st, err, sizeof(err)) != 0) {
                fprintf(stderr, "task_throughput: %s\n", err);
                return 1;
            }
            lines += st.ops[0].out;
            kept += st.ops[1].out;
        }
        double dt = now_s() - t0;
        printf("task.%s parallelism %u (one after the other): %.1f MB in "
               "%.3f s = %.0f MB/s, %llu lines in, %llu records out\n",
               runs[k].name, n, (double)written / 1048576.0, dt,
               (double)written / 1048576.0 / dt, (unsigned long long)lines,
               (unsigned long long)kept);
    }
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
