/* herd_ckpt_save: writes one checkpoint and commits it.
 *
 * Commit protocol (DESIGN.md, "Checkpoints"): HDF5 writes `<final>.tmp`,
 * flushes and closes it; the closed file is fsynced through open(2); it is
 * renamed to `<final>` and the directory is fsynced; then `latest` is
 * replaced the same way. A crash at any point leaves either the previous
 * state or the new one, never a half-written file under a final name. On
 * any failure the temp file (and a final file this call renamed into place)
 * is removed, so the error return means "this checkpoint does not exist".
 * Before the fsync the file is sealed (ckpt_seal.c): a whole-file checksum
 * goes into the HDF5 user block. ckpt_fault_point() marks the places the
 * kill -9 tests (tests/fault) stop the process at.
 */
#include "herd/settings.h"
#include "herd/fs.h"
#include "herd/clock.h"
#include "ckpt_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "herd/herd.h"
#include "herd/log.h"

/* A name becomes an HDF5 path: "a/b" makes group "a". Reject what HDF5 would
 * read differently ("/x", "a//b", ".", "..") or refuse late. */
static herd_result_t s_check_name(const char *name)
{
  size_t len = name ? strnlen(name, CKPT_NAME_MAX + 1) : 0;
  if (len == 0 || len > CKPT_NAME_MAX || name[0] == '/' ||
      name[len - 1] == '/' || strstr(name, "//"))
    goto bad;
  for (const char *c = name; c; c = strchr(c, '/')) {
    c += *c == '/';
    if (strncmp(c, ".", 1) == 0 && (c[1] == '/' || c[1] == '\0'))
      goto bad;
    if (strncmp(c, "..", 2) == 0 && (c[2] == '/' || c[2] == '\0'))
      goto bad;
  }
  return HERD_OK;
bad:
  return herd_error_set(HERD_EINVAL, "bad tensor name '%.*s'", CKPT_NAME_MAX,
                        name ? name : "(null)");
}

/* true when a and b are the same name or one is a group of the other. */
static bool s_names_clash(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  size_t n = la < lb ? la : lb;
  if (strncmp(a, b, n) != 0)
    return false;
  return la == lb || (la < lb ? b[la] : a[lb]) == '/';
}

static herd_result_t s_check_tensor(const herd_tensor_t *tensors, size_t i)
{
  const herd_tensor_t *t = &tensors[i];
  HERD_CHECK(s_check_name(t->name));
  size_t size = ckpt_dtype_size(t->dtype);
  if (size == 0 || (t->count > 0 && !t->data) ||
      t->count > CKPT_TENSOR_BYTES_MAX / size)
    return herd_error_set(HERD_EINVAL, "tensor '%s': bad dtype, data or count",
                          t->name);
  for (size_t j = 0; j < i; j++) {
    if (s_names_clash(tensors[j].name, t->name))
      return herd_error_set(HERD_EINVAL, "tensor names '%s' and '%s' clash",
                            tensors[j].name, t->name);
  }
  return HERD_OK;
}

static herd_result_t s_check_args(const char *dir, const herd_ckpt_meta_t *meta,
                                  const herd_tensor_t *tensors, size_t count)
{
  if (!dir || !dir[0] || !meta || (count > 0 && !tensors))
    return herd_error_set(HERD_EINVAL, "herd_ckpt_save: missing argument");
  if (count > HERD_CKPT_MAX_TENSORS)
    return herd_error_set(HERD_EINVAL, "%zu tensors, at most %d", count,
                          HERD_CKPT_MAX_TENSORS);
  if (meta->step < 0 || meta->step > CKPT_STEP_MAX)
    return herd_error_set(HERD_EINVAL, "step %lld out of range",
                          (long long)meta->step);
  if (!memchr(meta->config_json, '\0', sizeof meta->config_json) ||
      !memchr(meta->lr_schedule_json, '\0', sizeof meta->lr_schedule_json))
    return herd_error_set(HERD_EINVAL, "config_json or lr_schedule_json is "
                                       "not terminated");
  if (meta->virtual_shards < 0 || meta->world_size < 0)
    return herd_error_set(HERD_EINVAL, "negative world_size or "
                                       "virtual_shards");
  for (size_t i = 0; i < count; i++)
    HERD_CHECK(s_check_tensor(tensors, i));
  return HERD_OK;
}

/* tensor_names: 1-D array of fixed-length strings, file order; an empty
 * checkpoint gets a null dataspace (HDF5 has no zero-length attribute). */
static herd_result_t s_write_names(hid_t file, const herd_tensor_t *tensors,
                                   size_t count, const char *path)
{
  herd_result_t rc = HERD_OK;
  size_t width = 2;
  for (size_t i = 0; i < count; i++)
    if (strlen(tensors[i].name) + 1 > width)
      width = strlen(tensors[i].name) + 1;
  char *buf = calloc(count ? count : 1, width);
  hsize_t dims[1] = {count};
  hid_t type = H5Tcopy(H5T_C_S1), attr = H5I_INVALID_HID;
  hid_t space = count ? H5Screate_simple(1, dims, NULL) : H5Screate(H5S_NULL);
  if (!buf) {
    rc = HERD_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < count; i++)
    memcpy(buf + i * width, tensors[i].name, strlen(tensors[i].name));
  if (type < 0 || space < 0 || H5Tset_size(type, width) < 0 ||
      H5Tset_cset(type, H5T_CSET_UTF8) < 0 ||
      (attr = H5Acreate2(file, CKPT_A_TENSOR_NAMES, type, space, H5P_DEFAULT,
                         H5P_DEFAULT)) < 0 ||
      (count > 0 && H5Awrite(attr, type, buf) < 0))
    rc = ckpt_h5_fail(HERD_EIO, path, CKPT_A_TENSOR_NAMES);
out:
  if (attr >= 0)
    H5Aclose(attr);
  if (space >= 0)
    H5Sclose(space);
  if (type >= 0)
    H5Tclose(type);
  free(buf);
  return rc;
}

static herd_result_t s_write_meta(hid_t file, const herd_ckpt_meta_t *meta,
                                  uint64_t checksum, const char *path)
{
  const int32_t version = HERD_CKPT_FORMAT_VERSION;
  hid_t i32 = H5T_STD_I32LE, i64 = H5T_STD_I64LE, u64 = H5T_STD_U64LE;
  HERD_CHECK(ckpt_attr_write(file, CKPT_A_FORMAT_VERSION, i32, H5T_NATIVE_INT32,
                             0, &version, path));
  HERD_CHECK(ckpt_attr_write(file, CKPT_A_STEP, i64, H5T_NATIVE_INT64, 0,
                             &meta->step, path));
  HERD_CHECK(ckpt_attr_write(file, CKPT_A_EPOCH, i64, H5T_NATIVE_INT64, 0,
                             &meta->epoch, path));
  HERD_CHECK(ckpt_attr_write(file, CKPT_A_STEP_IN_EPOCH, i64, H5T_NATIVE_INT64,
                             0, &meta->step_in_epoch, path));
  HERD_CHECK(ckpt_attr_write(file, CKPT_A_RNG_STATE, u64, H5T_NATIVE_UINT64, 4,
                             meta->rng_state, path));
  HERD_CHECK(ckpt_attr_write(file, CKPT_A_WORLD_SIZE, i32, H5T_NATIVE_INT32, 0,
                             &meta->world_size, path));
  HERD_CHECK(ckpt_attr_write(file, CKPT_A_VIRTUAL_SHARDS, i32,
                             H5T_NATIVE_INT32, 0, &meta->virtual_shards,
                             path));
  HERD_CHECK(ckpt_attr_write_str(file, CKPT_A_LR_SCHEDULE,
                                 meta->lr_schedule_json, path));
  HERD_CHECK(ckpt_attr_write(file, CKPT_A_UNIX_TIME, H5T_IEEE_F64LE,
                             H5T_NATIVE_DOUBLE, 0, &meta->unix_time, path));
  HERD_CHECK(
      ckpt_attr_write_str(file, CKPT_A_CONFIG_JSON, meta->config_json, path));
  HERD_CHECK(
      ckpt_attr_write_str(file, CKPT_A_HERD_VERSION, HERD_VERSION, path));
  return ckpt_attr_write(file, CKPT_A_CHECKSUM, u64, H5T_NATIVE_UINT64, 0,
                         &checksum, path);
}

/* Dataset creation properties: chunked (Fletcher32 needs chunks), at most
 * CKPT_CHUNK_ELEMS per chunk, never pre-filled since every byte is written. */
static hid_t s_dcpl_new(size_t count)
{
  hsize_t chunk[1] = {count == 0                 ? 1
                      : count < CKPT_CHUNK_ELEMS ? count
                                                 : CKPT_CHUNK_ELEMS};
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (dcpl < 0)
    return H5I_INVALID_HID;
  if (H5Pset_chunk(dcpl, 1, chunk) < 0 || H5Pset_fletcher32(dcpl) < 0 ||
      H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0) {
    H5Pclose(dcpl);
    return H5I_INVALID_HID;
  }
  return dcpl;
}

/* Scratch state of one save: a reused chunk buffer (chunk bytes + the 4
 * Fletcher32 bytes), the content checksum being streamed, HDF5's descriptor
 * for writeback kicks, bytes written since the last kick. */
typedef struct {
  unsigned char *chunk;
  ckpt_hash_t hash;
  int fd;
  uint64_t unkicked;
} s_save_t;

#define S_KICK_BYTES ((uint64_t)64 << 20)

/* Writes the chunks of t with H5Dwrite_chunk: each chunk is copied once into
 * a reused buffer, its Fletcher32 appended exactly as HDF5's filter would
 * (ckpt_fletcher32, little-endian after the data; the last chunk is padded with
 * zeros to the full chunk size, as HDF5 stores edge chunks), so readers run
 * the normal filter pipeline and verify it. The content checksum takes the
 * same bytes while they are in cache: no second pass over the tensors. The
 * normal H5Dwrite path allocated, zeroed and copied every chunk twice and
 * ran a byte-at-a-time Fletcher32. Little-endian hosts only (the file's
 * bytes are the memory bytes); others use H5Dwrite. */
static herd_result_t s_write_chunks(hid_t dset, const herd_tensor_t *t,
                                    s_save_t *save, const char *path)
{
  size_t elem = ckpt_dtype_size(t->dtype);
  size_t chunk_elems = t->count < CKPT_CHUNK_ELEMS ? t->count
                                                   : CKPT_CHUNK_ELEMS;
  size_t chunk_bytes = chunk_elems * elem;
  const unsigned char *src = t->data;
  for (size_t off = 0; off < t->count; off += chunk_elems) {
    size_t n = t->count - off < chunk_elems ? t->count - off : chunk_elems;
    memcpy(save->chunk, src + off * elem, n * elem);
    if (n < chunk_elems)
      memset(save->chunk + n * elem, 0, (chunk_elems - n) * elem);
    ckpt_hash_bytes(&save->hash, save->chunk, n * elem);
    uint32_t sum = ckpt_fletcher32(save->chunk, chunk_bytes);
    unsigned char *tail = save->chunk + chunk_bytes;
    for (int b = 0; b < 4; b++) /* UINT32ENCODE: little-endian */
      tail[b] = (unsigned char)(sum >> (8 * b));
    hsize_t offset[1] = {off};
    if (H5Dwrite_chunk(dset, H5P_DEFAULT, 0, offset, chunk_bytes + 4,
                       save->chunk) < 0)
      return ckpt_h5_fail(HERD_EIO, path, t->name);
    save->unkicked += chunk_bytes + 4;
    if (save->unkicked >= S_KICK_BYTES && save->fd >= 0) {
      ckpt_start_writeback(save->fd);
      save->unkicked = 0;
    }
  }
  return HERD_OK;
}

static herd_result_t s_write_tensor(hid_t file, const herd_tensor_t *t,
                                    s_save_t *save, const char *path)
{
  herd_result_t rc = HERD_OK;
  /* A chunked dataset may not have a fixed zero size: count 0 is extendible. */
  hsize_t dims[1] = {t->count};
  hsize_t maxdims[1] = {t->count ? t->count : H5S_UNLIMITED};
  hid_t dcpl = s_dcpl_new(t->count), lcpl = H5Pcreate(H5P_LINK_CREATE);
  hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
  hid_t space = H5Screate_simple(1, dims, maxdims), dset = H5I_INVALID_HID;
  /* No chunk cache: chunks go to the file inside the write call, so a full
   * disk fails there, not in the final flush (after which HDF5 1.10 cannot
   * close the file, see s_abandon). */
  if (dcpl < 0 || lcpl < 0 || dapl < 0 || space < 0 ||
      H5Pset_create_intermediate_group(lcpl, 1) < 0 ||
      H5Pset_chunk_cache(dapl, 0, 0, 1.0) < 0 ||
      (dset = H5Dcreate2(file, t->name, ckpt_dtype_file_type(t->dtype), space,
                         lcpl, dcpl, dapl)) < 0) {
    rc = ckpt_h5_fail(HERD_EIO, path, t->name);
    goto out;
  }
  HERD_TRY(
      ckpt_attr_write_str(dset, CKPT_A_DTYPE, ckpt_dtype_name(t->dtype), path));
  ckpt_hash_tensor_head(&save->hash, t->name, t->dtype, t->count);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  rc = s_write_chunks(dset, t, save, path);
#else
  ckpt_hash_elems(&save->hash, t->data, t->count, ckpt_dtype_size(t->dtype));
  if (t->count > 0 && H5Dwrite(dset, ckpt_dtype_mem_type(t->dtype), H5S_ALL,
                               H5S_ALL, H5P_DEFAULT, t->data) < 0)
    rc = ckpt_h5_fail(HERD_EIO, path, t->name);
#endif
out:
  if (dset >= 0)
    H5Dclose(dset);
  if (space >= 0)
    H5Sclose(space);
  if (lcpl >= 0)
    H5Pclose(lcpl);
  if (dapl >= 0)
    H5Pclose(dapl);
  if (dcpl >= 0)
    H5Pclose(dcpl);
  return rc;
}

/* After a failed write HDF5 must still close the file: one it cannot close
 * stays open inside the library, and its exit-time cleanup crashes on it.
 * The temp file is deleted anyway, so give the close room on a full disk:
 * truncate it through HDF5's own descriptor (sec2 driver: an int), then
 * close; the close only writes metadata. A failed *flush* of metadata
 * cannot be recovered in HDF5 1.10.8 ("slist already enabled?"): the file
 * stays open; the free-space preflight makes that case rare. */
static void s_abandon(hid_t file)
{
  void *handle = NULL;
  if (H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) >= 0 && handle)
    (void)!ftruncate(*(int *)handle, 0);
  if (H5Fclose(file) < 0) {
    H5Eclear2(H5E_DEFAULT);
    HERD_LOG(HERD_LOG_WARN, "ckpt", "HDF5 kept a failed checkpoint open");
  }
}

/* Refuses a save that cannot fit before HDF5 starts (a clean ENOSPC instead
 * of a half-written temp file). Tensor bytes plus 1 MiB of HDF5 metadata;
 * HERD_CKPT_PREFLIGHT=0 turns the check off (tests use it to exercise
 * HDF5's own ENOSPC path). */
static herd_result_t s_preflight(const char *dir, const herd_tensor_t *tensors,
                                 size_t count)
{
  const char *env = herd_setting_string(HERD_S_CKPT_PREFLIGHT);
  struct statvfs vfs;
  if ((env && !strcmp(env, "0")) || statvfs(dir, &vfs) != 0)
    return HERD_OK;
  uint64_t need = UINT64_C(1) << 20;
  for (size_t i = 0; i < count; i++)
    need += (uint64_t)tensors[i].count * ckpt_dtype_size(tensors[i].dtype);
  uint64_t avail = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
  if (avail < need)
    return herd_error_set(HERD_ENOSPC, "checkpoint dir '%s': need about %llu "
                          "bytes, %llu free: No space left on device", dir,
                          (unsigned long long)need, (unsigned long long)avail);
  return HERD_OK;
}

/* HDF5 part of the save: on HERD_OK the file is flushed and closed. */
static herd_result_t s_write_h5(const char *path, const herd_ckpt_meta_t *meta,
                                const herd_tensor_t *tensors, size_t count)
{
  herd_result_t rc = HERD_OK;
  hid_t file = H5I_INVALID_HID;
  hid_t fapl = ckpt_fapl_new(), fcpl = H5Pcreate(H5P_FILE_CREATE);
  s_save_t save = {.fd = -1};
  size_t chunk_max = 0;
  for (size_t i = 0; i < count; i++) {
    size_t n = tensors[i].count < CKPT_CHUNK_ELEMS ? tensors[i].count
                                                   : CKPT_CHUNK_ELEMS;
    size_t bytes = n * ckpt_dtype_size(tensors[i].dtype);
    chunk_max = bytes > chunk_max ? bytes : chunk_max;
  }
  if (!(save.chunk = malloc(chunk_max + 4))) {
    rc = herd_error_set(HERD_ENOMEM, "checkpoint '%s': no memory for a chunk",
                        path);
    goto out;
  }
  if (fapl < 0 || fcpl < 0 || H5Pset_userblock(fcpl, CKPT_USERBLOCK) < 0 ||
      (file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl)) < 0) {
    rc = ckpt_h5_fail(HERD_EIO, path, "create");
    goto out;
  }
  void *handle = NULL; /* sec2 driver: an int descriptor */
  if (H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) >= 0 && handle)
    save.fd = *(int *)handle;
  else
    H5Eclear2(H5E_DEFAULT);
  /* The content checksum streams through s_write_tensor; the attributes
   * that need it are written after the tensors. */
  ckpt_hash_init(&save.hash);
  ckpt_hash_meta(&save.hash, meta, count);
  HERD_TRY(s_write_names(file, tensors, count, path));
  for (size_t i = 0; i < count; i++) {
    HERD_TRY(s_write_tensor(file, &tensors[i], &save, path));
    if (i == count / 2)
      ckpt_fault_point("h5_mid");
  }
  HERD_TRY(s_write_meta(file, meta, ckpt_hash_final(&save.hash), path));
  if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) {
    rc = ckpt_h5_fail(HERD_EIO, path, "flush");
    goto out;
  }
  if (H5Fclose(file) < 0)
    rc = ckpt_h5_fail(HERD_EIO, path, "close");
  else
    file = H5I_INVALID_HID;
out:
  if (file >= 0)
    s_abandon(file);
  if (fapl >= 0)
    H5Pclose(fapl);
  if (fcpl >= 0)
    H5Pclose(fcpl);
  free(save.chunk);
  return rc;
}

/* tmp -> final. On failure neither name is left behind. */
static herd_result_t s_commit_file(const char *dir, const char *tmp,
                                   const char *final,
                                   const herd_ckpt_meta_t *meta,
                                   const herd_tensor_t *tensors, size_t count)
{
  herd_result_t rc = s_write_h5(tmp, meta, tensors, count);
  if (rc == HERD_OK) {
    ckpt_fault_point("h5_closed");
    rc = ckpt_seal_write(tmp); /* seal, fsync, close */
  }
  if (rc == HERD_OK) {
    ckpt_fault_point("synced");
    if (rename(tmp, final) != 0)
      rc = ckpt_errno_fail(errno, final, "rename");
  }
  if (rc != HERD_OK) {
    unlink(tmp);
    return rc;
  }
  ckpt_fault_point("renamed");
  rc = herd_fsync_path(dir, 1);
  if (rc != HERD_OK)
    unlink(final);
  return rc;
}

/* `latest` <- "<name>\n", itself through temp + fsync + rename + dir fsync. */
static herd_result_t s_commit_latest(const char *dir, const char *name)
{
  char latest[PATH_MAX], tmp[PATH_MAX], line[CKPT_FILE_NAME_LEN + 2];
  HERD_CHECK(ckpt_join(latest, sizeof latest, dir, CKPT_LATEST));
  HERD_CHECK(ckpt_join(tmp, sizeof tmp, dir, CKPT_LATEST CKPT_TMP_SUFFIX));
  snprintf(line, sizeof line, "%s\n", name);
  herd_result_t rc = herd_write_file(tmp, line, strlen(line));
  if (rc == HERD_OK) {
    ckpt_fault_point("latest_tmp");
    if (rename(tmp, latest) != 0)
      rc = ckpt_errno_fail(errno, latest, "rename");
  }
  if (rc != HERD_OK) {
    unlink(tmp);
    return rc;
  }
  ckpt_fault_point("latest_renamed");
  return herd_fsync_path(dir, 1);
}

herd_result_t herd_ckpt_save(const char *dir, herd_ckpt_meta_t *meta,
                             const herd_tensor_t *tensors, size_t tensor_count,
                             char *path_out, size_t path_cap)
{
  char name[CKPT_FILE_NAME_LEN + 1], final[PATH_MAX], tmp[PATH_MAX];
  HERD_CHECK(s_check_args(dir, meta, tensors, tensor_count));
  ckpt_file_name(meta->step, name);
  HERD_CHECK(ckpt_join(final, sizeof final, dir, name));
  if (snprintf(tmp, sizeof tmp, "%s" CKPT_TMP_SUFFIX, final) >= (int)sizeof tmp)
    return herd_error_set(HERD_EINVAL, "checkpoint path too long: '%s'", final);
  if (path_out && strlen(final) >= path_cap)
    return herd_error_set(HERD_EINVAL, "path_out too small for '%s'", final);
  HERD_CHECK(herd_mkdir_p(dir, 0777));
  HERD_CHECK(s_preflight(dir, tensors, tensor_count));
  meta->unix_time = herd_unix_s();
  if (meta->virtual_shards == 0)
    meta->virtual_shards = HERD_CKPT_VIRTUAL_SHARDS_DEFAULT;

  ckpt_lock();
  herd_result_t rc =
      s_commit_file(dir, tmp, final, meta, tensors, tensor_count);
  if (rc == HERD_OK) {
    ckpt_fault_point("committed");
    rc = s_commit_latest(dir, name);
    if (rc != HERD_OK) {
      /* Keep the promise of the header: failed save, no final file. A
       * `latest` left pointing at it makes find_latest fall back. */
      unlink(final);
      (void)herd_fsync_path(dir, 1);
    }
  }
  ckpt_unlock();
  if (rc == HERD_OK && path_out)
    memcpy(path_out, final, strlen(final) + 1);
  return rc;
}
