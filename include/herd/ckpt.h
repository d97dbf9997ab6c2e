/* herd checkpoints (HDF5).
 *
 * One file per checkpoint step, `<dir>/ckpt-<step 10 digits>.h5`, plus a
 * `latest` pointer file holding the file name. Commit protocol: write
 * `<name>.tmp`, flush, fsync, close, rename to the final name, fsync the
 * directory, then replace `latest` the same way (temp, fsync, rename, dir
 * fsync). A file that was not renamed into place does not exist for loaders.
 * Tensors are chunked datasets with the Fletcher32 filter; a whole-content
 * checksum (over metadata and all tensor bytes) is stored as an attribute and
 * checked on load. HDF5 auto-printing is off; HDF5 errors become results with
 * a detail naming the file.
 */
#ifndef HERD_CKPT_H
#define HERD_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "herd/comm.h"
#include "herd/result.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HERD_CKPT_FORMAT_VERSION 1
#define HERD_CKPT_MAX_TENSORS 64

/* A named flat tensor. On save `data` is read; on load `data` must point to
 * `count` elements of `dtype`, which must match the file exactly. */
typedef struct {
  const char *name; /* dataset path, e.g. "params" or "optim/m" */
  herd_dtype_t dtype;
  void *data;
  size_t count;
} herd_tensor_t;

/* Training-state metadata stored as attributes. */
typedef struct {
  int64_t step;          /* global step count of completed steps */
  int64_t epoch;         /* epoch the next step belongs to */
  int64_t step_in_epoch; /* sampler cursor: steps done in `epoch` */
  uint64_t rng_state[4];
  int32_t world_size;    /* world size at save time */
  double unix_time;      /* filled by save */
  char config_json[4096]; /* training config as JSON text (NUL-terminated) */
} herd_ckpt_meta_t;

/* Saves a committed checkpoint for meta->step into `dir` (created if
 * missing) and updates `latest`. Writes the final path to path_out (may be
 * NULL). Any write/fsync/close error fails the save and leaves no file
 * under the final name; ENOSPC maps to HERD_ENOSPC. */
herd_result_t herd_ckpt_save(const char *dir, herd_ckpt_meta_t *meta,
                             const herd_tensor_t *tensors, size_t tensor_count,
                             char *path_out, size_t path_cap);

/* Loads `path` after verifying it: fills meta and every tensor's data.
 * Returns HERD_ECHECKSUM/HERD_EFORMAT for a damaged file, HERD_EINVAL when a
 * tensor's dtype or count differs. */
herd_result_t herd_ckpt_load(const char *path, herd_ckpt_meta_t *meta,
                             const herd_tensor_t *tensors, size_t tensor_count);

/* Reads only the metadata of `path` (no checksum). */
herd_result_t herd_ckpt_read_meta(const char *path, herd_ckpt_meta_t *meta);

/* Full integrity check of one file (HDF5 structure, Fletcher32, content
 * checksum). HERD_OK only when every check passes. */
herd_result_t herd_ckpt_verify(const char *path);

/* Finds the newest committed checkpoint in `dir` that verifies: tries the
 * `latest` pointer first, falls back to scanning ckpt-*.h5 newest first
 * (skipping *.tmp and files that fail verification, logging why).
 * HERD_ENOENT when there is none. */
herd_result_t herd_ckpt_find_latest(const char *dir, char *path_out,
                                    size_t path_cap);

/* Deletes all but the newest `keep` committed checkpoints (and stale .tmp
 * files). */
herd_result_t herd_ckpt_prune(const char *dir, int keep);

#ifdef __cplusplus
}
#endif
#endif
