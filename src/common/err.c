/* err.c - the error table: fl_strerror and fl_err_name. */
#include <fling/common.h>

static const char *const messages[] = {
#define FL__ERR_MSG(name, msg) msg,
    FL_ERRNO_MAP(FL__ERR_MSG)
#undef FL__ERR_MSG
};

static const char *const names[] = {
#define FL__ERR_NAME(name, msg) "FL_" #name,
    FL_ERRNO_MAP(FL__ERR_NAME)
#undef FL__ERR_NAME
};

const char *fl_strerror(int err)
{
    if (err >= 0 && err < FL__ERR_COUNT)
        return messages[err];
    if (err >= FL_EUSER)
        return "application error";
    return "unknown error";
}

const char *fl_err_name(int err)
{
    if (err >= 0 && err < FL__ERR_COUNT)
        return names[err];
    if (err >= FL_EUSER)
        return "FL_EUSER";
    return "FL_EUNKNOWN";
}
