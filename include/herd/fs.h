/* File-system helpers shared by the coordinator, checkpoints and the CLI. */
#ifndef HERD_FS_H
#define HERD_FS_H

#include <sys/types.h>

#include "herd/result.h"

#ifdef __cplusplus
extern "C" {
#endif

/* `mkdir -p`: creates `path` and every missing parent with `mode` (less
 * the umask; 0777 is what mkdir(1) uses). HERD_OK when it ends up a
 * folder; HERD_ENOSPC for a full disk, HERD_EIO for other failures (also
 * when `path` exists as something else), HERD_EINVAL for an empty or
 * over-long path, each naming the folder. */
herd_result_t herd_mkdir_p(const char *path, mode_t mode);

#ifdef __cplusplus
}
#endif
#endif
