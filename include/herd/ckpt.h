/* herd checkpoints (HDF5).
 *
 * Thread safety: every function may be called from any thread; herd's HDF5
 * calls are serialised by one lock inside the checkpoint module (HDF5 is not
 * thread-safe in this build). Other HDF5 users in the same process
 * (herd_dataset_load) must not run while a writer saves; herd-train loads
 * its data before training starts, so its writer never overlaps them.
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herd/dtype.h"
#include "herd/result.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HERD_CKPT_FORMAT_VERSION 2
#define HERD_CKPT_MAX_TENSORS 64
/* Virtual shards recorded in a checkpoint when meta.virtual_shards is 0. */
#define HERD_CKPT_VIRTUAL_SHARDS_DEFAULT 16

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
  int32_t virtual_shards; /* data shards the sampler state is cut into;
                             0 on save = HERD_CKPT_VIRTUAL_SHARDS_DEFAULT */
  double unix_time;      /* filled by save */
  char config_json[4096]; /* training config as JSON text (NUL-terminated) */
  char lr_schedule_json[1024]; /* LR schedule state as JSON ("" = none) */
} herd_ckpt_meta_t;

/* One tensor as listed in a file (herd_ckpt_list_tensors). */
typedef struct {
  char name[256];
  herd_dtype_t dtype;
  size_t count;
} herd_ckpt_tensor_info_t;

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

/* Full integrity check of one file (the whole-file seal with its SHA-256,
 * HDF5 structure, Fletcher32, content checksum, and with a checkpoint key
 * set its HMAC: HERD_EAUTH when it is missing or does not match).
 * HERD_OK only when every check passes. */
herd_result_t herd_ckpt_verify(const char *path);

/* The checkpoint key: every save signs the file with HMAC-SHA256 under it,
 * and every verify and load refuses a file not signed with it (tampered).
 * Read from `path` (16-4096 bytes, herd_read_secret_file); NULL or "": no
 * key. Without a call, the key file is HERD_CKPT_KEY_FILE's, read on first
 * use. */
herd_result_t herd_ckpt_set_key_file(const char *path);

/* Finds the newest committed checkpoint in `dir` that verifies: tries the
 * `latest` pointer first, falls back to scanning ckpt-*.h5 newest first
 * (skipping *.tmp and files that fail verification, logging why).
 * HERD_ENOENT when there is none. */
herd_result_t herd_ckpt_find_latest(const char *dir, char *path_out,
                                    size_t path_cap);

/* Deletes all but the newest `keep` committed checkpoints (and stale .tmp
 * files). */
herd_result_t herd_ckpt_prune(const char *dir, int keep);

/* Lists the tensors of `path` in file order (no checksum pass; use verify).
 * Fills at most `cap` entries of `out`; *count_out is the number in the
 * file, which may exceed cap. */
herd_result_t herd_ckpt_list_tensors(const char *path,
                                     herd_ckpt_tensor_info_t *out, size_t cap,
                                     size_t *count_out);

/* --- asynchronous writer (ckpt_writer.c) ---------------------------------
 * One background thread per writer writes and commits snapshots. submit
 * copies the tensors into one reusable host buffer and returns, so the
 * caller is blocked only for that memcpy. At most one save is in flight:
 * a submit while the previous save still runs WAITS for it (no checkpoint
 * the caller asked for is ever dropped; the wait is counted in the stats),
 * so extra host memory is bounded by one snapshot. After each successful
 * commit the writer prunes to the newest `keep` (0: keep all), so an old
 * checkpoint is deleted only once a newer one is durable. A failed save is
 * logged, counted and reported once through poll; it is never retried.
 * Completions are handed out by poll, on the caller's thread, so code that
 * is not thread-safe (the worker runtime's reports) can react to them.
 * All writer functions must be called from one thread (the owner). */
typedef struct herd_ckpt_writer herd_ckpt_writer_t;

typedef struct {
  int64_t step;
  herd_result_t result; /* HERD_OK: committed and durable */
  char path[4096];      /* final path (valid when result is HERD_OK) */
  char detail[512];     /* error detail when result is not HERD_OK */
  double write_seconds; /* background write + commit time */
} herd_ckpt_completion_t;

typedef struct {
  uint64_t submitted, committed, failed;
  uint64_t waited;           /* submits that waited for the previous save */
  uint64_t completions_lost; /* completions dropped because nobody polled */
  double last_stall_seconds; /* time the last submit blocked the caller */
  double max_stall_seconds;
  double last_write_seconds;
  uint64_t snapshot_bytes;   /* host memory held for the snapshot */
} herd_ckpt_writer_stats_t;

/* Starts a writer saving into `dir` (keep: newest to retain, 0 = all).
 * Caller owns *out (herd_ckpt_writer_destroy). */
herd_result_t herd_ckpt_writer_new(const char *dir, int keep,
                                   herd_ckpt_writer_t **out);
/* Snapshots meta and tensors (copies) and queues the save; waits first when
 * a save is still in flight. Arguments are checked as herd_ckpt_save does;
 * HERD_ENOMEM when the snapshot cannot be allocated. */
herd_result_t herd_ckpt_writer_submit(herd_ckpt_writer_t *writer,
                                      const herd_ckpt_meta_t *meta,
                                      const herd_tensor_t *tensors,
                                      size_t tensor_count);
/* Pops one finished save into *out; false when none is pending. */
bool herd_ckpt_writer_poll(herd_ckpt_writer_t *writer,
                           herd_ckpt_completion_t *out);
/* Blocks until no save is in flight; returns the last save's result. */
herd_result_t herd_ckpt_writer_wait(herd_ckpt_writer_t *writer);
void herd_ckpt_writer_stats(herd_ckpt_writer_t *writer,
                            herd_ckpt_writer_stats_t *out);
/* Waits for the save in flight, stops the thread, frees; NULL-safe. */
void herd_ckpt_writer_destroy(herd_ckpt_writer_t **writer_p);

#ifdef __cplusplus
}
#endif
#endif
