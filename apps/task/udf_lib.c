/*
 * apps/task/udf_lib.c - loading a job's user library: dlopen, the ABI
 * check, and symbols looked up in the library itself only.
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <fling/common.h>

#include "task_int.h"

struct fj_udf_lib {
    void *handle;
    const char *l_name; /* the loader's name of the library */
    char path[];
};

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

int fj_udf_lib_open(const char *path, fj_udf_lib_t **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    size_t n = strlen(path);
    fj_udf_lib_t *lib = malloc(sizeof(*lib) + n + 1);
    if (!lib)
        return fail(err, errlen, FL_ENOMEM,
                    "User library %s cannot be loaded: out of memory", path);
    memcpy(lib->path, path, n + 1);
    dlerror();
    lib->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle) {
        const char *why = dlerror();
        struct stat st;
        int code =
            (strchr(path, '/') && stat(path, &st) != 0 && errno == ENOENT)
                ? FL_ENOENT
                : FL_EINVAL;
        fail(err, errlen, code, "User library %s cannot be loaded: %s", path,
             why ? why : "unknown error");
        free(lib);
        return code;
    }
    struct link_map *lm = NULL;
    lib->l_name = NULL;
    if (dlinfo(lib->handle, RTLD_DI_LINKMAP, &lm) == 0 && lm)
        lib->l_name = lm->l_name;
    /* The ABI symbol must be the library's own, not one of a library it
     * happens to depend on. */
    const uint32_t *abi = fj_udf_lib_sym(lib, FL_UDF_ABI_SYMBOL);
    int rc = FL_OK;
    if (!abi)
        rc = fail(err, errlen, FL_EINVAL,
                  "User library %s exports no %s; build it with FL_UDF_ABI "
                  "from <fling/udf.h>",
                  path, FL_UDF_ABI_SYMBOL);
    else if (*abi != FL_UDF_ABI_VERSION)
        rc = fail(err, errlen, FL_EINVAL,
                  "User library %s was built for the user function ABI %u, "
                  "and this runner takes ABI %u; rebuild it against this "
                  "version's <fling/udf.h>",
                  path, (unsigned)*abi, (unsigned)FL_UDF_ABI_VERSION);
    if (rc != FL_OK) {
        fj_udf_lib_close(lib);
        return rc;
    }
    *out = lib;
    return FL_OK;
}

void *fj_udf_lib_sym(fj_udf_lib_t *lib, const char *name)
{
    dlerror();
    void *sym = dlsym(lib->handle, name);
    if (!sym)
        return NULL;
    Dl_info info;
    if (lib->l_name && dladdr(sym, &info) != 0 && info.dli_fname &&
        strcmp(info.dli_fname, lib->l_name) != 0)
        return NULL;
    return sym;
}

const char *fj_udf_lib_path(const fj_udf_lib_t *lib)
{
    return lib->path;
}

void fj_udf_lib_close(fj_udf_lib_t *lib)
{
    if (!lib)
        return;
    dlclose(lib->handle);
    free(lib);
}
