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

/* Durable writes. Errors name the file and the step that failed; ENOSPC is
 * HERD_ENOSPC, any other failure HERD_EIO. */

/* open + fsync + close of a file or (is_dir) a folder. */
herd_result_t herd_fsync_path(const char *path, int is_dir);
/* Creates or truncates `path` (mode 0644 less the umask), writes all `len`
 * bytes, fsyncs and closes it. */
herd_result_t herd_write_file(const char *path, const void *data, size_t len);
/* rename(tmp, final), then an fsync of final's folder so the rename itself
 * survives a crash. tmp is removed when the rename fails. */
herd_result_t herd_rename_durably(const char *tmp, const char *final);
/* herd_write_file to `path`.tmp.PID, then herd_rename_durably: a reader,
 * even after a crash, sees the old contents or the new, never a part. */
herd_result_t herd_write_file_atomic(const char *path, const void *data,
                                     size_t len);

/* herd_write_file_atomic for a secret: the file is created mode 0600
 * (before any byte is in it), whatever the umask. */
herd_result_t herd_write_secret_atomic(const char *path, const void *data,
                                       size_t len);
/* Reads a secret (a token, a key) from a file: a regular file (symlinks,
 * as Kubernetes mounts Secrets, are followed) of at most cap - 1 bytes,
 * trailing whitespace removed, NUL-terminated; *len_out (may be NULL) gets
 * its length. Empty is an error. A file that users other than its owner
 * may read is used, with a warning (chmod 600). Errors name the file, never
 * its contents. */
herd_result_t herd_read_secret_file(const char *path, char *out, size_t cap,
                                    size_t *len_out);

#ifdef __cplusplus
}
#endif
#endif
