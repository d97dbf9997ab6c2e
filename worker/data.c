/* Fashion-MNIST import (IDX gzip -> HDF5) and loading (see herd/data.h).
 *
 * Import reads and validates all four input files completely in memory
 * (about 55 MB) before it creates anything, so a bad input never produces
 * output. Every check that fails names the file: wrong magic, wrong image
 * size, a count out of bounds, a stream shorter than its header promises
 * (gzread comes up short or gzerror reports a cut-off stream), data after the
 * end, a label >= 10, images and labels disagreeing on the count, or a file
 * that is not gzip at all (zlib would otherwise pass it through verbatim).
 *
 * The HDF5 file is written to out_path.tmp, fsync'd and renamed into place,
 * then the directory is fsync'd: readers see either the old file or the
 * complete new one. HDF5's own error printing is turned off; on failure its
 * error stack goes to herd's logger and a one-line detail to the caller.
 *
 * Loading checks types, ranks and bounded sizes before allocating, and the
 * label range after reading, because the file may come from anywhere.
 */
#include "herd/fs.h"
#include "herd/data.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "herd/log.h"

#define IDX_MAGIC_IMAGES 0x00000803u /* unsigned byte, 3 dimensions */
#define IDX_MAGIC_LABELS 0x00000801u /* unsigned byte, 1 dimension */
#define IDX_SIDE 28
#define IDX_CLASSES 10
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define DATA_MAX_COUNT 10000000u         /* samples per split */
#define DATA_MAX_SIDE 1024               /* loader: rows, cols */
#define DATA_MAX_BYTES ((size_t)1 << 33) /* loader: pixels per split */
#else
/* The fuzzer (tests/fuzz/fuzz_data.c) counts an allocation over 2 GiB as a
 * finding; a header may honestly claim up to the limits above. */
#define DATA_MAX_COUNT 100000u
#define DATA_MAX_SIDE 1024
#define DATA_MAX_BYTES ((size_t)1 << 27)
#endif
#define GZ_CHUNK ((size_t)1 << 26)       /* gzread takes an unsigned int */

/* ---- reading IDX gzip files ---- */

static uint32_t s_be32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static herd_result_t s_gz_open(const char *path, gzFile *out)
{
  errno = 0;
  gzFile gz = gzopen(path, "rb");
  if (!gz)
    return herd_error_set(errno == ENOENT ? HERD_ENOENT : HERD_EIO,
                          "%s: cannot open: %s", path,
                          errno ? strerror(errno) : "out of memory");
  gzbuffer(gz, 1u << 17);
  /* Asked right after gzopen, zlib peeks at the header; a non-gzip file
   * would otherwise be read through as raw bytes. */
  if (gzdirect(gz)) {
    gzclose(gz);
    return herd_error_set(HERD_EFORMAT, "%s: not a gzip file", path);
  }
  *out = gz;
  return HERD_OK;
}

/* zlib's message, without the "path: " prefix gzerror() puts in front. */
static const char *s_gz_message(gzFile gz, const char *path, int *zerr)
{
  const char *msg = gzerror(gz, zerr);
  size_t len = strlen(path);
  if (strncmp(msg, path, len) == 0 && strncmp(msg + len, ": ", 2) == 0)
    msg += len + 2;
  return msg;
}

/* A negative gzread is a corrupt stream; a short one with Z_BUF_ERROR is a
 * compressed stream cut off; a short one without error is a file whose
 * content ends early. All but the first are "truncated". */
static herd_result_t s_gz_read_exact(gzFile gz, const char *path, void *buf,
                                     size_t len, const char *what)
{
  size_t got = 0;
  while (got < len) {
    size_t want = len - got < GZ_CHUNK ? len - got : GZ_CHUNK;
    int n = gzread(gz, (uint8_t *)buf + got, (unsigned)want);
    int zerr = Z_OK;
    const char *zmsg = s_gz_message(gz, path, &zerr);
    if (n < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR))
      return herd_error_set(HERD_EFORMAT, "%s: corrupt gzip data: %s", path,
                            zmsg);
    got += (size_t)n;
    if (n == 0 || (got < len && zerr == Z_BUF_ERROR))
      return herd_error_set(HERD_EFORMAT,
                            "%s: truncated: expected %zu bytes of %s, got %zu",
                            path, len, what, got);
  }
  return HERD_OK;
}

/* Reading one byte past the end also makes zlib verify the gzip trailer. */
static herd_result_t s_gz_expect_end(gzFile gz, const char *path,
                                     size_t consumed)
{
  uint8_t byte;
  int n = gzread(gz, &byte, 1);
  int zerr = Z_OK;
  const char *zmsg = s_gz_message(gz, path, &zerr);
  if (n > 0)
    return herd_error_set(HERD_EFORMAT, "%s: trailing data after %zu bytes",
                          path, consumed);
  if (n < 0 || zerr == Z_BUF_ERROR)
    return herd_error_set(HERD_EFORMAT, "%s: %s gzip stream: %s", path,
                          n < 0 ? "corrupt" : "truncated", zmsg);
  if (zerr != Z_OK)
    return herd_error_set(HERD_EFORMAT, "%s: corrupt gzip data: %s", path,
                          zmsg);
  return HERD_OK;
}

static herd_result_t s_check_count(const char *path, uint32_t count)
{
  if (count == 0 || count > DATA_MAX_COUNT)
    return herd_error_set(HERD_EFORMAT, "%s: sample count %u not in 1..%u",
                          path, count, DATA_MAX_COUNT);
  return HERD_OK;
}

static herd_result_t s_read_images(const char *path, herd_data_split_t *split)
{
  herd_result_t rc = HERD_OK;
  gzFile gz = NULL;
  uint8_t header[16];
  HERD_TRY(s_gz_open(path, &gz));
  HERD_TRY(s_gz_read_exact(gz, path, header, sizeof(header), "header"));
  uint32_t magic = s_be32(header), count = s_be32(header + 4);
  uint32_t rows = s_be32(header + 8), cols = s_be32(header + 12);
  if (magic != IDX_MAGIC_IMAGES) {
    rc = herd_error_set(HERD_EFORMAT, "%s: bad magic 0x%08x, want 0x%08x", path,
                        magic, IDX_MAGIC_IMAGES);
    goto out;
  }
  HERD_TRY(s_check_count(path, count));
  if (rows != IDX_SIDE || cols != IDX_SIDE) {
    rc = herd_error_set(HERD_EFORMAT, "%s: images are %ux%u, want %dx%d", path,
                        rows, cols, IDX_SIDE, IDX_SIDE);
    goto out;
  }
  size_t bytes = (size_t)count * IDX_SIDE * IDX_SIDE;
  split->images = malloc(bytes);
  if (!split->images) {
    rc =
        herd_error_set(HERD_ENOMEM, "%s: no memory for %zu bytes", path, bytes);
    goto out;
  }
  HERD_TRY(s_gz_read_exact(gz, path, split->images, bytes, "pixels"));
  HERD_TRY(s_gz_expect_end(gz, path, sizeof(header) + bytes));
  split->count = count;
  split->rows = split->cols = IDX_SIDE;
out:
  if (gz)
    gzclose(gz);
  return rc;
}

static herd_result_t s_check_labels(const char *path, const uint8_t *labels,
                                    size_t count)
{
  for (size_t i = 0; i < count; i++)
    if (labels[i] >= IDX_CLASSES)
      return herd_error_set(HERD_EFORMAT,
                            "%s: label %u at index %zu is not "
                            "below %d",
                            path, labels[i], i, IDX_CLASSES);
  return HERD_OK;
}

/* images_count comes from the matching images file, already read. */
static herd_result_t s_read_labels(const char *path, size_t images_count,
                                   herd_data_split_t *split)
{
  herd_result_t rc = HERD_OK;
  gzFile gz = NULL;
  uint8_t header[8];
  HERD_TRY(s_gz_open(path, &gz));
  HERD_TRY(s_gz_read_exact(gz, path, header, sizeof(header), "header"));
  uint32_t magic = s_be32(header), count = s_be32(header + 4);
  if (magic != IDX_MAGIC_LABELS) {
    rc = herd_error_set(HERD_EFORMAT, "%s: bad magic 0x%08x, want 0x%08x", path,
                        magic, IDX_MAGIC_LABELS);
    goto out;
  }
  HERD_TRY(s_check_count(path, count));
  if (count != images_count) {
    rc = herd_error_set(HERD_EFORMAT,
                        "%s: %u labels but the images file has "
                        "%zu images",
                        path, count, images_count);
    goto out;
  }
  split->labels = malloc(count);
  if (!split->labels) {
    rc = herd_error_set(HERD_ENOMEM, "%s: out of memory", path);
    goto out;
  }
  HERD_TRY(s_gz_read_exact(gz, path, split->labels, count, "labels"));
  HERD_TRY(s_gz_expect_end(gz, path, sizeof(header) + count));
  HERD_TRY(s_check_labels(path, split->labels, count));
out:
  if (gz)
    gzclose(gz);
  return rc;
}

static herd_result_t s_join(char *buf, size_t size, const char *a,
                            const char *b)
{
  int n = snprintf(buf, size, "%s%s", a, b);
  if (n < 0 || (size_t)n >= size)
    return herd_error_set(HERD_EINVAL, "path too long: %s%s", a, b);
  return HERD_OK;
}

static herd_result_t s_read_split(const char *dir, const char *prefix,
                                  herd_data_split_t *split)
{
  char path[PATH_MAX], name[64];
  snprintf(name, sizeof(name), "/%s-images-idx3-ubyte.gz", prefix);
  HERD_CHECK(s_join(path, sizeof(path), dir, name));
  HERD_CHECK(s_read_images(path, split));
  snprintf(name, sizeof(name), "/%s-labels-idx1-ubyte.gz", prefix);
  HERD_CHECK(s_join(path, sizeof(path), dir, name));
  return s_read_labels(path, split->count, split);
}

/* ---- HDF5 ---- */

static herr_t s_h5_log_entry(unsigned n, const H5E_error2_t *e, void *u)
{
  HERD_LOG(HERD_LOG_DEBUG, "data", "hdf5 #%u: %s() %s:%u: %s", n, e->func_name,
           e->file_name, e->line, e->desc ? e->desc : "");
  return 0;
}

/* Logs HDF5's error stack and returns a detail naming path and operation. */
static herd_result_t s_h5_fail(const char *path, const char *what)
{
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, s_h5_log_entry, NULL);
  H5Eclear2(H5E_DEFAULT);
  return herd_error_set(HERD_EIO, "%s: HDF5 %s failed", path, what);
}

static void s_h5_quiet(void)
{
  /* herd reports errors itself; HDF5 would print to stderr. */
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void s_h5_close(hid_t *id, herr_t (*close_fn)(hid_t))
{
  if (*id >= 0)
    close_fn(*id);
  *id = H5I_INVALID_HID;
}

static herd_result_t s_h5_write_u8(hid_t group, const char *path,
                                   const char *name, int rank,
                                   const hsize_t *dims, const uint8_t *data)
{
  herd_result_t rc = HERD_OK;
  hid_t space = H5Screate_simple(rank, dims, NULL);
  hid_t dset = H5I_INVALID_HID;
  if (space < 0) {
    rc = s_h5_fail(path, "dataspace creation");
    goto out;
  }
  dset = H5Dcreate2(group, name, H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT,
                    H5P_DEFAULT);
  if (dset < 0 ||
      H5Dwrite(dset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    rc = s_h5_fail(path, name);
out:
  s_h5_close(&dset, H5Dclose);
  s_h5_close(&space, H5Sclose);
  return rc;
}

static herd_result_t s_h5_write_split(hid_t file, const char *path,
                                      const char *group_name,
                                      const herd_data_split_t *split)
{
  herd_result_t rc = HERD_OK;
  hsize_t image_dims[3] = {split->count, (hsize_t)split->rows,
                           (hsize_t)split->cols};
  hsize_t label_dims[1] = {split->count};
  hid_t group =
      H5Gcreate2(file, group_name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (group < 0) {
    rc = s_h5_fail(path, group_name);
    goto out;
  }
  HERD_TRY(s_h5_write_u8(group, path, "images", 3, image_dims, split->images));
  HERD_TRY(s_h5_write_u8(group, path, "labels", 1, label_dims, split->labels));
out:
  s_h5_close(&group, H5Gclose);
  return rc;
}

static herd_result_t s_h5_write_source(hid_t file, const char *path,
                                       const char *source)
{
  herd_result_t rc = HERD_OK;
  hid_t type = H5Tcopy(H5T_C_S1);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5I_INVALID_HID;
  if (type < 0 || space < 0 || H5Tset_size(type, strlen(source)) < 0) {
    rc = s_h5_fail(path, "attribute type");
    goto out;
  }
  attr = H5Acreate2(file, "source", type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (attr < 0 || H5Awrite(attr, type, source) < 0)
    rc = s_h5_fail(path, "source attribute");
out:
  s_h5_close(&attr, H5Aclose);
  s_h5_close(&space, H5Sclose);
  s_h5_close(&type, H5Tclose);
  return rc;
}

static herd_result_t s_h5_write_file(const char *path, const herd_dataset_t *ds)
{
  herd_result_t rc = HERD_OK;
  /* The HDF5 1.10 object formats, as checkpoints: every metadata block
   * carries a checksum, so a damaged file is refused by HDF5's checks
   * instead of being parsed (HDF5 >= 1.10 reads it: h5py too). */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0 ||
      H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) < 0) {
    if (fapl >= 0)
      H5Pclose(fapl);
    return s_h5_fail(path, "file access properties");
  }
  hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  if (file < 0)
    return s_h5_fail(path, "file creation");
  HERD_TRY(s_h5_write_split(file, path, "/train", &ds->train));
  HERD_TRY(s_h5_write_split(file, path, "/test", &ds->test));
  HERD_TRY(s_h5_write_source(file, path, "fashion-mnist"));
out:
  /* Closing flushes; a failure there means the file is incomplete. */
  if (H5Fclose(file) < 0 && rc == HERD_OK)
    rc = s_h5_fail(path, "close");
  return rc;
}

static void s_split_free(herd_data_split_t *split)
{
  free(split->images);
  free(split->labels);
  memset(split, 0, sizeof(*split));
}

herd_result_t herd_data_import_fashion_mnist(const char *src_dir,
                                             const char *out_path)
{
  herd_result_t rc = HERD_OK;
  herd_dataset_t ds;
  char tmp[PATH_MAX];
  int tmp_exists = 0;
  memset(&ds, 0, sizeof(ds));
  if (!src_dir || !out_path || !*out_path)
    return herd_error_set(HERD_EINVAL, "import: missing source or output");
  HERD_TRY(s_join(tmp, sizeof(tmp), out_path, ".tmp"));
  HERD_TRY(s_read_split(src_dir, "train", &ds.train));
  HERD_TRY(s_read_split(src_dir, "t10k", &ds.test));
  s_h5_quiet();
  tmp_exists = 1;
  HERD_TRY(s_h5_write_file(tmp, &ds));
  HERD_TRY(herd_fsync_path(tmp, 0));
  tmp_exists = 0; /* renamed, or removed on failure */
  HERD_TRY(herd_rename_durably(tmp, out_path));
out:
  if (tmp_exists)
    unlink(tmp);
  s_split_free(&ds.train);
  s_split_free(&ds.test);
  return rc;
}

/* ---- loading ---- */

/* Opens a dataset and checks it is unsigned 8-bit with `rank` dimensions. */
static herd_result_t s_h5_open_u8(hid_t file, const char *path,
                                  const char *name, int rank, hsize_t *dims,
                                  hid_t *dset_out)
{
  herd_result_t rc = HERD_OK;
  hid_t dset = H5Dopen2(file, name, H5P_DEFAULT);
  hid_t type = H5I_INVALID_HID, space = H5I_INVALID_HID;
  if (dset < 0) {
    rc = herd_error_set(HERD_EFORMAT, "%s: no dataset %s", path, name);
    goto out;
  }
  type = H5Dget_type(dset);
  space = H5Dget_space(dset);
  if (type < 0 || space < 0 || H5Tget_class(type) != H5T_INTEGER ||
      H5Tget_size(type) != 1 || H5Tget_sign(type) != H5T_SGN_NONE ||
      H5Sget_simple_extent_ndims(space) != rank ||
      H5Sget_simple_extent_dims(space, dims, NULL) != rank) {
    rc = herd_error_set(HERD_EFORMAT, "%s: %s is not a %d-D uint8 array", path,
                        name, rank);
    goto out;
  }
  *dset_out = dset;
  dset = H5I_INVALID_HID;
out:
  H5Eclear2(H5E_DEFAULT);
  s_h5_close(&space, H5Sclose);
  s_h5_close(&type, H5Tclose);
  s_h5_close(&dset, H5Dclose);
  return rc;
}

static herd_result_t s_h5_read_all(hid_t dset, const char *path,
                                   const char *name, size_t bytes,
                                   uint8_t **out)
{
  uint8_t *buf = malloc(bytes);
  if (!buf)
    return herd_error_set(HERD_ENOMEM, "%s: no memory for %s (%zu bytes)", path,
                          name, bytes);
  if (H5Dread(dset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
    free(buf);
    return s_h5_fail(path, name);
  }
  *out = buf;
  return HERD_OK;
}

static herd_result_t s_check_shape(const char *path, const char *group,
                                   const hsize_t *image_dims,
                                   const hsize_t *label_dims)
{
  hsize_t n = image_dims[0], rows = image_dims[1], cols = image_dims[2];
  if (n < 1 || n > DATA_MAX_COUNT || rows < 1 || rows > DATA_MAX_SIDE ||
      cols < 1 || cols > DATA_MAX_SIDE || n * rows * cols > DATA_MAX_BYTES)
    return herd_error_set(HERD_EFORMAT,
                          "%s: %s/images has unsupported shape "
                          "[%llu,%llu,%llu]",
                          path, group, (unsigned long long)n,
                          (unsigned long long)rows, (unsigned long long)cols);
  if (label_dims[0] != n)
    return herd_error_set(HERD_EFORMAT,
                          "%s: %s has %llu labels for %llu "
                          "images",
                          path, group, (unsigned long long)label_dims[0],
                          (unsigned long long)n);
  return HERD_OK;
}

static herd_result_t s_load_split(hid_t file, const char *path,
                                  const char *group, herd_data_split_t *split)
{
  herd_result_t rc = HERD_OK;
  hid_t images = H5I_INVALID_HID, labels = H5I_INVALID_HID;
  hsize_t image_dims[3], label_dims[1];
  char name[64];
  snprintf(name, sizeof(name), "%s/images", group);
  HERD_TRY(s_h5_open_u8(file, path, name, 3, image_dims, &images));
  snprintf(name, sizeof(name), "%s/labels", group);
  HERD_TRY(s_h5_open_u8(file, path, name, 1, label_dims, &labels));
  HERD_TRY(s_check_shape(path, group, image_dims, label_dims));
  size_t n = (size_t)image_dims[0];
  size_t bytes = n * (size_t)image_dims[1] * (size_t)image_dims[2];
  HERD_TRY(s_h5_read_all(images, path, "images", bytes, &split->images));
  HERD_TRY(s_h5_read_all(labels, path, "labels", n, &split->labels));
  HERD_TRY(s_check_labels(path, split->labels, n));
  split->count = n;
  split->rows = (int)image_dims[1];
  split->cols = (int)image_dims[2];
out:
  s_h5_close(&labels, H5Dclose);
  s_h5_close(&images, H5Dclose);
  return rc;
}

herd_result_t herd_dataset_load(const char *path, herd_dataset_t **out)
{
  herd_result_t rc = HERD_OK;
  herd_dataset_t *ds = NULL;
  hid_t file = H5I_INVALID_HID;
  s_h5_quiet();
  file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) {
    rc = herd_error_set(access(path, F_OK) == 0 ? HERD_EFORMAT : HERD_ENOENT,
                        "%s: cannot open as HDF5", path);
    H5Eclear2(H5E_DEFAULT);
    goto out;
  }
  ds = calloc(1, sizeof(*ds));
  if (!ds) {
    rc = herd_error_set(HERD_ENOMEM, "%s: out of memory", path);
    goto out;
  }
  HERD_TRY(s_load_split(file, path, "/train", &ds->train));
  HERD_TRY(s_load_split(file, path, "/test", &ds->test));
  *out = ds;
  ds = NULL;
out:
  s_h5_close(&file, H5Fclose);
  herd_dataset_destroy(&ds);
  return rc;
}

void herd_dataset_destroy(herd_dataset_t **dataset_p)
{
  if (!dataset_p || !*dataset_p)
    return;
  s_split_free(&(*dataset_p)->train);
  s_split_free(&(*dataset_p)->test);
  free(*dataset_p);
  *dataset_p = NULL;
}
