/* Private to checkpoint/: the pieces shared by the writer (ckpt_write.c), the
 * reader/verifier (ckpt.c), the directory logic (ckpt_dir.c) and the HDF5 and
 * file-system helpers (ckpt_h5.c, ckpt_fs.c). Nothing here is public API; the
 * on-disk format these names describe is documented in FORMAT.md.
 */
#ifndef HERD_CKPT_INTERNAL_H
#define HERD_CKPT_INTERNAL_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "herd/ckpt.h"

/* Longest tensor name in bytes (without the NUL). Bounds what we read back. */
#define CKPT_NAME_MAX 255
/* Largest tensor we write or read: a sanity bound on sizes read from a file. */
#define CKPT_TENSOR_BYTES_MAX (UINT64_C(1) << 34)
/* Elements per HDF5 chunk, and per read slice (so verify needs <= 8 MiB). */
#define CKPT_CHUNK_ELEMS ((size_t)1 << 20)
/* The file name carries the step as exactly 10 digits. */
#define CKPT_STEP_MAX INT64_C(9999999999)
#define CKPT_FILE_NAME_LEN 18 /* "ckpt-" + 10 digits + ".h5" */
#define CKPT_LATEST "latest"
#define CKPT_TMP_SUFFIX ".tmp"

/* Attribute and dataset names (see FORMAT.md). */
#define CKPT_A_FORMAT_VERSION "format_version"
#define CKPT_A_STEP "step"
#define CKPT_A_EPOCH "epoch"
#define CKPT_A_STEP_IN_EPOCH "step_in_epoch"
#define CKPT_A_RNG_STATE "rng_state"
#define CKPT_A_WORLD_SIZE "world_size"
#define CKPT_A_VIRTUAL_SHARDS "virtual_shards"
#define CKPT_A_LR_SCHEDULE "lr_schedule_json"
#define CKPT_A_UNIX_TIME "unix_time"
#define CKPT_A_CONFIG_JSON "config_json"
#define CKPT_A_HERD_VERSION "herd_version"
#define CKPT_A_TENSOR_NAMES "tensor_names"
#define CKPT_A_CHECKSUM "content_checksum"
#define CKPT_A_DTYPE "herd_dtype" /* on every tensor dataset */

/* --- ckpt_h5.c: HDF5 glue ------------------------------------------------ */

/* HDF5 in this build is not thread-safe: every public entry point holds this
 * lock while it touches HDF5. The first call also turns auto-printing off. */
void ckpt_lock(void);
void ckpt_unlock(void);

/* Converts the HDF5 failure that just happened into `rc` (HERD_EIO becomes
 * HERD_ENOSPC when the disk was full): logs the HDF5 error stack as one debug
 * line, clears it, and sets a detail naming `path` and the failed step. */
herd_result_t ckpt_h5_fail(herd_result_t rc, const char *path,
                           const char *what);

/* File access properties: no file locking (shared file systems), and v1.8+
 * object formats so that HDF5 checksums its own metadata. H5I_INVALID_HID on
 * failure. Caller closes. */
hid_t ckpt_fapl_new(void);

/* dtype table. */
size_t ckpt_dtype_size(herd_dtype_t dtype);      /* 0 = unknown dtype */
const char *ckpt_dtype_name(herd_dtype_t dtype); /* NULL = unknown */
bool ckpt_dtype_parse(const char *name, herd_dtype_t *dtype);
hid_t ckpt_dtype_file_type(herd_dtype_t dtype); /* little-endian */
hid_t ckpt_dtype_mem_type(herd_dtype_t dtype);  /* native */

/* Attributes. `count` 0 means a scalar. Reads check class, size and shape
 * before touching the value, so garbage files cannot overflow `out`. */
herd_result_t ckpt_attr_write(hid_t obj, const char *name, hid_t file_type,
                              hid_t mem_type, size_t count, const void *value,
                              const char *path);
herd_result_t ckpt_attr_read(hid_t obj, const char *name, hid_t mem_type,
                             size_t count, void *out, const char *path);
herd_result_t ckpt_attr_write_str(hid_t obj, const char *name, const char *text,
                                  const char *path);
/* Reads a fixed-length string attribute into buf, NUL-terminated; one that
 * does not fit in cap bytes with its NUL is HERD_EFORMAT. */
herd_result_t ckpt_attr_read_str(hid_t obj, const char *name, char *buf,
                                 size_t cap, const char *path);

/* --- ckpt_hash.c: herd-fnv4x64 checksums (see FORMAT.md) ---------------- */

#define CKPT_HASH_BLOCK 32
typedef struct {
  uint64_t lanes[4];
  uint64_t total; /* bytes hashed */
  unsigned char buf[CKPT_HASH_BLOCK];
  size_t buf_len;
} ckpt_hash_t;

void ckpt_hash_init(ckpt_hash_t *hash);
void ckpt_hash_bytes(ckpt_hash_t *hash, const void *data, size_t len);
uint64_t ckpt_hash_final(const ckpt_hash_t *hash);
void ckpt_hash_meta(ckpt_hash_t *hash, const herd_ckpt_meta_t *meta,
                    size_t tensor_count);
void ckpt_hash_tensor_head(ckpt_hash_t *hash, const char *name,
                           herd_dtype_t dtype, size_t count);
/* Elements in host order; hashed as their little-endian bytes. */
void ckpt_hash_elems(ckpt_hash_t *hash, const void *data, size_t count,
                     size_t elem_size);

/* HDF5's Fletcher32 (H5_checksum_fletcher32, the H5Z_FILTER_FLETCHER32
 * filter) over len bytes, bit-identical to the library's result; the filter
 * appends it little-endian after the chunk. Used for direct chunk writes. */
uint32_t ckpt_fletcher32(const void *data, size_t len);

/* --- ckpt_fs.c: POSIX side of the commit protocol ------------------------ */

/* ENOSPC -> HERD_ENOSPC, anything else -> HERD_EIO; sets a detail naming
 * `path`, the step and strerror(err). */
herd_result_t ckpt_errno_fail(int err, const char *path, const char *what);
/* dir + "/" + name into buf; HERD_EINVAL when it does not fit. */
herd_result_t ckpt_join(char *buf, size_t cap, const char *dir,
                        const char *name);
/* "ckpt-%010lld.h5" <-> step. parse accepts exactly that shape, nothing
 * else (no '/', no ".tmp"). */
void ckpt_file_name(int64_t step, char name[CKPT_FILE_NAME_LEN + 1]);
bool ckpt_parse_name(const char *name, int64_t *step);
/* Committed steps found in dir, newest first. Caller frees *steps_out. */
herd_result_t ckpt_list_steps(const char *dir, int64_t **steps_out,
                              size_t *count_out);

/* --- ckpt_seal.c: whole-file checksum in the HDF5 user block ------------- */

/* Bytes reserved at the start of every file (HDF5 user block). */
#define CKPT_USERBLOCK 512
/* Hashes every byte after the user block of the closed file `path`, writes
 * the seal header into the user block, fsyncs and closes. */
herd_result_t ckpt_seal_write(const char *path);
/* Starts (does not wait for) writeback of fd's dirty pages, so the disk
 * works while the writer still computes; the fsync later only waits. */
void ckpt_start_writeback(int fd);
/* HERD_OK when the seal is intact and matches every byte of the file;
 * HERD_ECHECKSUM otherwise (also for a truncated or extended file). */
herd_result_t ckpt_seal_check(const char *path);

/* --- fault injection (tests only) ---------------------------------------- */

/* When HERD_CKPT_FAULT is "<point>" or "<point>:<n>", the n-th (default
 * first) time the writer passes `point` the process SIGKILLs itself. Points
 * are listed in FORMAT.md ("Fault points"). No effect when unset. */
void ckpt_fault_point(const char *point);

/* --- ckpt.c: reader, used by the directory logic ------------------------ */

/* herd_ckpt_verify without taking the lock (caller holds it). */
herd_result_t ckpt_verify_locked(const char *path);

#endif
