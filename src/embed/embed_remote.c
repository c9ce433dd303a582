/* embed_remote — placeholder until the OpenAI-compatible client lands (next commits). */
#include "embed/embed_backend.h"
int embed_remote_open(const embed_config *cfg, embed_backend *out, char *err, size_t errlen) {
    (void)cfg; (void)out;
    return embed_fail(err, errlen, "remote embedder is not built yet");
}
