/* Checkpoint reader: herd_ckpt_load, herd_ckpt_read_meta, herd_ckpt_verify.
 *
 * Load and verify are one pass: every tensor listed in `tensor_names` is read
 * in slices of one chunk (Fletcher32 is checked by HDF5 on each chunk), the
 * content checksum is recomputed as the bytes go by, and load writes the
 * slices of the tensors the caller asked for straight into its buffers.
 * Everything read from the file is bounded before it is used: the file may
 * be truncated, bit-flipped or not HDF5 at all, and the answer must then be
 * an error, never a crash. A failed load leaves the caller's buffers
 * unspecified, never `meta`. Load and verify first check the whole-file
 * seal (ckpt_seal.c), so a change to any byte of the file is an error even
 * where HDF5 would never read it; read_meta and list_tensors skip it.
 */
#include "ckpt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
  const char *path;
  hid_t file;
  uint64_t checksum; /* as stored */
  size_t count;      /* tensors listed in the file */
  char names[HERD_CKPT_MAX_TENSORS][CKPT_NAME_MAX + 1];
  hid_t dsets[HERD_CKPT_MAX_TENSORS];
  herd_dtype_t dtypes[HERD_CKPT_MAX_TENSORS];
  size_t counts[HERD_CKPT_MAX_TENSORS];
} s_reader_t;

static bool s_ends_with(const char *text, const char *suffix)
{
  size_t lt = strlen(text), ls = strlen(suffix);
  return lt >= ls && strcmp(text + lt - ls, suffix) == 0;
}

static void s_close(s_reader_t *r)
{
  for (size_t i = 0; i < HERD_CKPT_MAX_TENSORS; i++)
    if (r->dsets[i] >= 0)
      H5Dclose(r->dsets[i]);
  if (r->file >= 0)
    H5Fclose(r->file);
  free(r);
}

/* A temp file "does not exist" for readers, whatever its content. */
static herd_result_t s_open(const char *path, bool sealed,
                             s_reader_t **reader)
{
  struct stat st;
  if (!path)
    return herd_error_set(HERD_EINVAL, "checkpoint path is NULL");
  if (s_ends_with(path, CKPT_TMP_SUFFIX))
    return herd_error_set(HERD_EINVAL, "'%s' is an uncommitted temp file",
                          path);
  if (stat(path, &st) != 0)
    return herd_error_set(errno == ENOENT ? HERD_ENOENT : HERD_EIO,
                          "checkpoint '%s': %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode))
    return herd_error_set(HERD_EFORMAT, "checkpoint '%s': not a file", path);
  if (sealed)
    HERD_CHECK(ckpt_seal_check(path));
  s_reader_t *r = calloc(1, sizeof *r);
  if (!r)
    return HERD_ENOMEM;
  r->path = path;
  r->file = H5I_INVALID_HID;
  for (size_t i = 0; i < HERD_CKPT_MAX_TENSORS; i++)
    r->dsets[i] = H5I_INVALID_HID;
  hid_t fapl = ckpt_fapl_new();
  if (fapl >= 0)
    r->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  herd_result_t rc = HERD_OK;
  if (r->file < 0) {
    rc = ckpt_h5_fail(HERD_EFORMAT, path, "open");
    s_close(r);
    r = NULL;
  }
  if (fapl >= 0)
    H5Pclose(fapl);
  *reader = r;
  return rc;
}

static herd_result_t s_read_version(s_reader_t *r)
{
  int32_t version = 0;
  HERD_CHECK(ckpt_attr_read(r->file, CKPT_A_FORMAT_VERSION, H5T_NATIVE_INT32, 0,
                            &version, r->path));
  if (version > HERD_CKPT_FORMAT_VERSION)
    return herd_error_set(HERD_EUNSUPPORTED,
                          "checkpoint '%s': format_version %d is newer than "
                          "%d",
                          r->path, (int)version, HERD_CKPT_FORMAT_VERSION);
  if (version < 1)
    return herd_error_set(HERD_EFORMAT,
                          "checkpoint '%s': bad format_version %d", r->path,
                          (int)version);
  if (version < HERD_CKPT_FORMAT_VERSION)
    return herd_error_set(HERD_EUNSUPPORTED,
                          "checkpoint '%s': format_version %d predates the "
                          "v2 checksums and is not read",
                          r->path, (int)version);
  return HERD_OK;
}

static herd_result_t s_read_meta(s_reader_t *r, herd_ckpt_meta_t *m)
{
  hid_t f = r->file;
  const char *p = r->path;
  HERD_CHECK(s_read_version(r));
  HERD_CHECK(ckpt_attr_read(f, CKPT_A_STEP, H5T_NATIVE_INT64, 0, &m->step, p));
  HERD_CHECK(
      ckpt_attr_read(f, CKPT_A_EPOCH, H5T_NATIVE_INT64, 0, &m->epoch, p));
  HERD_CHECK(ckpt_attr_read(f, CKPT_A_STEP_IN_EPOCH, H5T_NATIVE_INT64, 0,
                            &m->step_in_epoch, p));
  HERD_CHECK(ckpt_attr_read(f, CKPT_A_RNG_STATE, H5T_NATIVE_UINT64, 4,
                            m->rng_state, p));
  HERD_CHECK(ckpt_attr_read(f, CKPT_A_WORLD_SIZE, H5T_NATIVE_INT32, 0,
                            &m->world_size, p));
  HERD_CHECK(ckpt_attr_read(f, CKPT_A_VIRTUAL_SHARDS, H5T_NATIVE_INT32, 0,
                            &m->virtual_shards, p));
  HERD_CHECK(ckpt_attr_read_str(f, CKPT_A_LR_SCHEDULE, m->lr_schedule_json,
                                sizeof m->lr_schedule_json, p));
  HERD_CHECK(ckpt_attr_read(f, CKPT_A_UNIX_TIME, H5T_NATIVE_DOUBLE, 0,
                            &m->unix_time, p));
  HERD_CHECK(ckpt_attr_read_str(f, CKPT_A_CONFIG_JSON, m->config_json,
                                sizeof m->config_json, p));
  return ckpt_attr_read(f, CKPT_A_CHECKSUM, H5T_NATIVE_UINT64, 0, &r->checksum,
                        p);
}

/* Checks the tensor_names attribute's shape; on HERD_OK *count and *width
 * are bounded by HERD_CKPT_MAX_TENSORS and CKPT_NAME_MAX + 1. */
static herd_result_t s_names_shape(s_reader_t *r, hid_t type, hid_t space,
                                   size_t *count, size_t *width)
{
  H5S_class_t kind = H5Sget_simple_extent_type(space);
  int rank = H5Sget_simple_extent_ndims(space);
  hssize_t points = H5Sget_simple_extent_npoints(space);
  *width = H5Tget_size(type);
  if (kind == H5S_NULL) {
    *count = 0;
    return HERD_OK;
  }
  if (kind != H5S_SIMPLE || rank != 1 || points < 0 ||
      points > HERD_CKPT_MAX_TENSORS || H5Tget_class(type) != H5T_STRING ||
      H5Tis_variable_str(type) != 0 || *width == 0 ||
      *width > CKPT_NAME_MAX + 1)
    return herd_error_set(HERD_EFORMAT, "checkpoint '%s': bad %s", r->path,
                          CKPT_A_TENSOR_NAMES);
  *count = (size_t)points;
  return HERD_OK;
}

static herd_result_t s_read_names(s_reader_t *r)
{
  herd_result_t rc = HERD_OK;
  char *buf = NULL;
  size_t width = 0;
  hid_t type = H5I_INVALID_HID, space = H5I_INVALID_HID;
  hid_t attr = H5Aopen(r->file, CKPT_A_TENSOR_NAMES, H5P_DEFAULT);
  if (attr < 0 || (type = H5Aget_type(attr)) < 0 ||
      (space = H5Aget_space(attr)) < 0) {
    rc = ckpt_h5_fail(HERD_EFORMAT, r->path, CKPT_A_TENSOR_NAMES);
    goto out;
  }
  HERD_TRY(s_names_shape(r, type, space, &r->count, &width));
  if (r->count == 0)
    goto out;
  if (!(buf = calloc(r->count, width))) {
    rc = HERD_ENOMEM;
    goto out;
  }
  if (H5Aread(attr, type, buf) < 0) {
    rc = ckpt_h5_fail(HERD_EFORMAT, r->path, CKPT_A_TENSOR_NAMES);
    goto out;
  }
  for (size_t i = 0; i < r->count; i++) {
    memcpy(r->names[i], buf + i * width, width); /* width <= NAME_MAX + 1 */
    r->names[i][width < CKPT_NAME_MAX + 1 ? width : CKPT_NAME_MAX] = '\0';
    if (r->names[i][0] == '\0')
      rc = herd_error_set(HERD_EFORMAT, "checkpoint '%s': empty tensor name",
                          r->path);
  }
out:
  free(buf);
  if (space >= 0)
    H5Sclose(space);
  if (type >= 0)
    H5Tclose(type);
  if (attr >= 0)
    H5Aclose(attr);
  return rc;
}

/* The stored HDF5 type must be exactly what save writes for `dtype`. */
static bool s_type_matches(hid_t type, herd_dtype_t dtype)
{
  hid_t want = ckpt_dtype_file_type(dtype);
  H5T_class_t cls = H5Tget_class(type);
  if (cls != H5Tget_class(want) || H5Tget_size(type) != H5Tget_size(want))
    return false;
  return cls != H5T_INTEGER || H5Tget_sign(type) == H5Tget_sign(want);
}

/* dtype and element count of dataset i, bounded by CKPT_TENSOR_BYTES_MAX. */
static herd_result_t s_tensor_shape(s_reader_t *r, size_t i, hid_t type,
                                    hid_t space)
{
  char dtype_name[16];
  hsize_t dims[1] = {0};
  const char *name = r->names[i];
  HERD_CHECK(ckpt_attr_read_str(r->dsets[i], CKPT_A_DTYPE, dtype_name,
                                sizeof dtype_name, r->path));
  if (!ckpt_dtype_parse(dtype_name, &r->dtypes[i]) ||
      !s_type_matches(type, r->dtypes[i]))
    return herd_error_set(HERD_EFORMAT,
                          "checkpoint '%s': tensor '%s' has "
                          "a bad type",
                          r->path, name);
  if (H5Sget_simple_extent_ndims(space) != 1 ||
      H5Sget_simple_extent_dims(space, dims, NULL) != 1)
    return herd_error_set(HERD_EFORMAT,
                          "checkpoint '%s': tensor '%s' is "
                          "not 1-D",
                          r->path, name);
  if (dims[0] > CKPT_TENSOR_BYTES_MAX / ckpt_dtype_size(r->dtypes[i]))
    return herd_error_set(HERD_ETOOBIG,
                          "checkpoint '%s': tensor '%s' has "
                          "%llu elements",
                          r->path, name, (unsigned long long)dims[0]);
  r->counts[i] = (size_t)dims[0];
  return HERD_OK;
}

static herd_result_t s_open_tensor(s_reader_t *r, size_t i)
{
  herd_result_t rc = HERD_OK;
  hid_t type = H5I_INVALID_HID, space = H5I_INVALID_HID;
  r->dsets[i] = H5Dopen2(r->file, r->names[i], H5P_DEFAULT);
  if (r->dsets[i] < 0 || (type = H5Dget_type(r->dsets[i])) < 0 ||
      (space = H5Dget_space(r->dsets[i])) < 0) {
    rc = ckpt_h5_fail(HERD_EFORMAT, r->path, r->names[i]);
    goto out;
  }
  rc = s_tensor_shape(r, i, type, space);
out:
  if (space >= 0)
    H5Sclose(space);
  if (type >= 0)
    H5Tclose(type);
  return rc;
}

/* map[i] = the caller's tensor for file tensor i, or NULL. Every requested
 * tensor must exist with the same dtype and count: checked before any byte
 * lands in a caller buffer. */
static herd_result_t s_match(s_reader_t *r, const herd_tensor_t *want,
                             size_t want_count, const herd_tensor_t **map)
{
  for (size_t j = 0; j < want_count; j++) {
    const herd_tensor_t *t = &want[j];
    size_t i = 0;
    while (i < r->count && (!t->name || strcmp(r->names[i], t->name) != 0))
      i++;
    if (i == r->count || map[i])
      return herd_error_set(HERD_EINVAL,
                            "checkpoint '%s': tensor '%s' is "
                            "missing or requested twice",
                            r->path, t->name ? t->name : "(null)");
    if (r->dtypes[i] != t->dtype || r->counts[i] != t->count ||
        (t->count > 0 && !t->data))
      return herd_error_set(HERD_EINVAL,
                            "checkpoint '%s': tensor '%s' is "
                            "%s[%zu], caller has dtype %d [%zu]",
                            r->path, t->name, ckpt_dtype_name(r->dtypes[i]),
                            r->counts[i], (int)t->dtype, t->count);
    map[i] = t;
  }
  return HERD_OK;
}

/* Reads tensor i slice by slice into `dest` (or `scratch`), hashing it. A
 * failed read is almost always a Fletcher32 mismatch or a damaged chunk. */
static herd_result_t s_read_tensor(s_reader_t *r, size_t i, void *dest,
                                   void *scratch, ckpt_hash_t *hash)
{
  herd_result_t rc = HERD_OK;
  size_t elem = ckpt_dtype_size(r->dtypes[i]), count = r->counts[i];
  hid_t mem_type = ckpt_dtype_mem_type(r->dtypes[i]);
  hid_t fspace = H5Dget_space(r->dsets[i]), mspace = H5I_INVALID_HID;
  ckpt_hash_tensor_head(hash, r->names[i], r->dtypes[i], count);
  for (size_t off = 0; off < count && rc == HERD_OK; off += CKPT_CHUNK_ELEMS) {
    hsize_t start[1] = {off};
    hsize_t n[1] = {count - off < CKPT_CHUNK_ELEMS ? count - off
                                                   : CKPT_CHUNK_ELEMS};
    void *buf = dest ? (char *)dest + off * elem : scratch;
    if (fspace < 0 || (mspace = H5Screate_simple(1, n, NULL)) < 0 ||
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, n, NULL) < 0 ||
        H5Dread(r->dsets[i], mem_type, mspace, fspace, H5P_DEFAULT, buf) < 0)
      rc = ckpt_h5_fail(HERD_ECHECKSUM, r->path, r->names[i]);
    else
      ckpt_hash_elems(hash, buf, (size_t)n[0], elem);
    if (mspace >= 0)
      H5Sclose(mspace);
    mspace = H5I_INVALID_HID;
  }
  if (fspace >= 0)
    H5Sclose(fspace);
  return rc;
}

/* All tensors in file order, then the checksum comparison. */
static herd_result_t s_read_all(s_reader_t *r, const herd_ckpt_meta_t *meta,
                                const herd_tensor_t **map)
{
  herd_result_t rc = HERD_OK;
  void *scratch = NULL;
  ckpt_hash_t hash;
  ckpt_hash_init(&hash);
  ckpt_hash_meta(&hash, meta, r->count);
  for (size_t i = 0; i < r->count; i++) {
    if (!map[i] && r->counts[i] > 0 && !scratch &&
        !(scratch = malloc(CKPT_CHUNK_ELEMS * sizeof(uint64_t)))) {
      rc = HERD_ENOMEM;
      goto out;
    }
    HERD_TRY(s_read_tensor(r, i, map[i] ? map[i]->data : NULL, scratch, &hash));
  }
  if (ckpt_hash_final(&hash) != r->checksum)
    rc = herd_error_set(HERD_ECHECKSUM,
                        "checkpoint '%s': content checksum "
                        "%016llx, stored %016llx",
                        r->path, (unsigned long long)ckpt_hash_final(&hash),
                        (unsigned long long)r->checksum);
out:
  free(scratch);
  return rc;
}

/* A file named ckpt-N.h5 must hold step N: a renamed copy is not step N. */
static herd_result_t s_check_step_name(const char *path, int64_t step)
{
  const char *base = strrchr(path, '/');
  int64_t named;
  base = base ? base + 1 : path;
  if (ckpt_parse_name(base, &named) && named != step)
    return herd_error_set(HERD_EFORMAT, "checkpoint '%s' holds step %lld", path,
                          (long long)step);
  return HERD_OK;
}

static herd_result_t s_load(const char *path, herd_ckpt_meta_t *meta_out,
                            const herd_tensor_t *want, size_t want_count)
{
  herd_result_t rc = HERD_OK;
  const herd_tensor_t *map[HERD_CKPT_MAX_TENSORS] = {0};
  herd_ckpt_meta_t *meta = calloc(1, sizeof *meta);
  s_reader_t *r = NULL;
  if (!meta) {
    rc = HERD_ENOMEM;
    goto out;
  }
  HERD_TRY(s_open(path, true, &r));
  HERD_TRY(s_read_meta(r, meta));
  HERD_TRY(s_check_step_name(path, meta->step));
  HERD_TRY(s_read_names(r));
  for (size_t i = 0; i < r->count; i++)
    HERD_TRY(s_open_tensor(r, i));
  HERD_TRY(s_match(r, want, want_count, map));
  HERD_TRY(s_read_all(r, meta, map));
  if (meta_out)
    *meta_out = *meta;
out:
  if (r)
    s_close(r);
  free(meta);
  return rc;
}

herd_result_t ckpt_verify_locked(const char *path)
{
  return s_load(path, NULL, NULL, 0);
}

herd_result_t herd_ckpt_verify(const char *path)
{
  ckpt_lock();
  herd_result_t rc = ckpt_verify_locked(path);
  ckpt_unlock();
  return rc;
}

herd_result_t herd_ckpt_load(const char *path, herd_ckpt_meta_t *meta,
                             const herd_tensor_t *tensors, size_t tensor_count)
{
  if (tensor_count > HERD_CKPT_MAX_TENSORS || (tensor_count && !tensors))
    return herd_error_set(HERD_EINVAL, "herd_ckpt_load: bad tensor list");
  ckpt_lock();
  herd_result_t rc = s_load(path, meta, tensors, tensor_count);
  ckpt_unlock();
  return rc;
}

herd_result_t herd_ckpt_read_meta(const char *path, herd_ckpt_meta_t *meta)
{
  herd_result_t rc = HERD_OK;
  s_reader_t *r = NULL;
  herd_ckpt_meta_t *tmp = calloc(1, sizeof *tmp);
  if (!meta || !tmp) {
    rc = meta ? HERD_ENOMEM : HERD_EINVAL;
    goto out;
  }
  ckpt_lock();
  rc = s_open(path, false, &r);
  if (rc == HERD_OK)
    rc = s_read_meta(r, tmp);
  if (r)
    s_close(r);
  ckpt_unlock();
  if (rc == HERD_OK)
    *meta = *tmp;
out:
  free(tmp);
  return rc;
}

static herd_result_t s_list(const char *path, herd_ckpt_tensor_info_t *out,
                            size_t cap, size_t *count_out)
{
  s_reader_t *r = NULL;
  herd_result_t rc = s_open(path, false, &r);
  if (rc == HERD_OK)
    rc = s_read_version(r);
  if (rc == HERD_OK)
    rc = s_read_names(r);
  for (size_t i = 0; rc == HERD_OK && i < r->count; i++)
    rc = s_open_tensor(r, i);
  for (size_t i = 0; rc == HERD_OK && i < r->count && i < cap; i++) {
    memcpy(out[i].name, r->names[i], sizeof out[i].name);
    out[i].dtype = r->dtypes[i];
    out[i].count = r->counts[i];
  }
  if (rc == HERD_OK)
    *count_out = r->count;
  if (r)
    s_close(r);
  return rc;
}

herd_result_t herd_ckpt_list_tensors(const char *path,
                                     herd_ckpt_tensor_info_t *out, size_t cap,
                                     size_t *count_out)
{
  if (!count_out || (cap > 0 && !out))
    return herd_error_set(HERD_EINVAL, "herd_ckpt_list_tensors: bad argument");
  ckpt_lock();
  herd_result_t rc = s_list(path, out, cap, count_out);
  ckpt_unlock();
  return rc;
}
