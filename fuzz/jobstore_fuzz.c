/*
 * jobstore_fuzz - libFuzzer target for the JobManager's job store files
 * (apps/jobmanager/jobstore_file.c; a file under
 * high-availability.storageDir is untrusted input): a file parses (a
 * job id of 32 hex digits) or is refused with a reason; never a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <fling/common.h>

#include "jobmanager/jobstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jm_stored_job_t j;
    char err[300];
    int rc = jm_jobfile_parse((const char *)data, size, &j, err, sizeof err);
    if (rc != FL_OK) {
        if (err[0] == '\0')
            abort(); /* a refusal says why */
        return 0;
    }
    if (strlen(j.job_id) != 32)
        abort();
    free(j.json);
    free(j.job_dir);
    return 0;
}
