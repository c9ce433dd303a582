/* use_lite — placeholder until the C port lands (next commits): reports the model as unavailable. */
#include "embed/embed_backend.h"
int embed_use_lite_open(const embed_config *cfg, embed_backend *out, char *err, size_t errlen) {
    (void)out;
    embed_fail(err, errlen, "use-lite is not built yet (model dir %s)", cfg->model_dir);
    return -2;
}
