/*
 * bench_certs.c - the test certificates of the *_tls benchmarks: where they
 * come from (scripts/bench.sh's set, or one made here with
 * scripts/test-certs.sh into a scratch folder removed at exit) and the TLS
 * options built from them. Contracts in bench.h.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef FLING_TEST_CERTS_SCRIPT
#error "FLING_TEST_CERTS_SCRIPT: the path of scripts/test-certs.sh"
#endif

/* The scratch folder made by bench_certs, removed at exit; "" if none. */
static char scratch[PATH_MAX];
/* The process that made it: a forked child that exits leaves it alone. */
static pid_t scratch_owner;

/* on_path: an executable named prog is in $PATH. */
static bool on_path(const char *prog)
{
    const char *path = getenv("PATH");
    char file[PATH_MAX];
    while (path != NULL && *path != '\0') {
        const char *end = strchr(path, ':');
        size_t len = end != NULL ? (size_t)(end - path) : strlen(path);
        /* An empty entry is the current folder. */
        int n = len > 0 ? snprintf(file, sizeof file, "%.*s/%s", (int)len, path,
                                   prog)
                        : snprintf(file, sizeof file, "./%s", prog);
        if (n > 0 && (size_t)n < sizeof file && access(file, X_OK) == 0)
            return true;
        path = end != NULL ? end + 1 : NULL;
    }
    return false;
}

int bench_certs_make(const bench_ctx_t *ctx, const char *dir)
{
    const char *script = FLING_TEST_CERTS_SCRIPT;
    posix_spawn_file_actions_t fa;
    char *argv[] = {(char *)script, (char *)dir, NULL};
    pid_t pid;
    int err, status;
    if (!on_path("openssl")) {
        note("%s: openssl is not in PATH: the TLS benchmarks make their "
             "certificates with %s, which needs it; install the Debian "
             "package openssl (scripts/deps.sh test)",
             ctx->name, script);
        return FL_ENOENT;
    }
    if ((err = posix_spawn_file_actions_init(&fa)) != 0)
        goto spawn_failed;
    /* The file list it prints is of no interest; its errors go to
     * stderr, beside ours. */
    err = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null",
                                           O_WRONLY, 0);
    if (err == 0)
        err = posix_spawn(&pid, script, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err != 0)
        goto spawn_failed;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            note("%s: waitpid for %s: %s", ctx->name, script, strerror(errno));
            return FL_ESYSTEM;
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        note("%s: %s %s failed (status 0x%x, its reason above): no "
             "certificates for TLS",
             ctx->name, script, dir, status);
        return FL_ESYSTEM;
    }
    return FL_OK;
spawn_failed:
    note("%s: cannot run %s: %s", ctx->name, script, strerror(err));
    return FL_ESYSTEM;
}

/* rm_entry removes one entry of the scratch folder (nftw, depth first). */
static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* remove_scratch is the atexit handler: removes the scratch folder, in
 * the process that made it only. */
static void remove_scratch(void)
{
    if (scratch[0] != '\0' && getpid() == scratch_owner)
        nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *bench_certs(const bench_ctx_t *ctx)
{
    const char *given = getenv("FLING_BENCH_CERTS");
    if (given != NULL && given[0] != '\0')
        return given;
    if (scratch[0] != '\0')
        return scratch;
    const char *tmp = getenv("TMPDIR");
    char dir[PATH_MAX];
    int n = snprintf(dir, sizeof dir, "%s/fling-bench-certs.XXXXXX",
                     tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (n < 0 || (size_t)n >= sizeof dir) {
        note("%s: TMPDIR is too long for a scratch folder", ctx->name);
        return NULL;
    }
    if (mkdtemp(dir) == NULL) {
        note("%s: cannot make a scratch folder %s: %s", ctx->name, dir,
             strerror(errno));
        return NULL;
    }
    static bool registered;
    if (!registered && atexit(remove_scratch) != 0) {
        note("%s: atexit: cannot remove the scratch folder %s at exit",
             ctx->name, dir);
        rmdir(dir);
        return NULL;
    }
    registered = true;
    memcpy(scratch, dir, sizeof scratch);
    scratch_owner = getpid();
    if (bench_certs_make(ctx, scratch) != FL_OK) {
        remove_scratch();
        scratch[0] = '\0';
        return NULL;
    }
    note("%s: test certificates made in %s (removed at exit)", ctx->name,
         scratch);
    return scratch;
}

int bench_tls_opts(const bench_ctx_t *ctx, const char *dir, bool server,
                   bench_tls_t *out)
{
    const char *role = server ? "server" : "client";
    int n1 = snprintf(out->cert, sizeof out->cert, "%s/%s.crt", dir, role);
    int n2 = snprintf(out->key, sizeof out->key, "%s/%s.key", dir, role);
    int n3 = snprintf(out->ca, sizeof out->ca, "%s/ca.crt", dir);
    if (n1 < 0 || n2 < 0 || n3 < 0 || (size_t)n1 >= sizeof out->cert ||
        (size_t)n2 >= sizeof out->key || (size_t)n3 >= sizeof out->ca) {
        note("%s: the certificates' folder %s: path too long", ctx->name, dir);
        return FL_EINVAL;
    }
    out->opts = (fl_rpc_tls_opts_t){
        .cert_file = out->cert, .key_file = out->key, .ca_file = out->ca};
    return FL_OK;
}
