/* Fashion-MNIST import: the real Debian files (when installed) and small
 * synthetic IDX gzip files, valid and broken. Every broken input must fail
 * with a detail naming the file and leave neither out_path nor its .tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ftw.h>
#include <math.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <hdf5.h>
#include <zlib.h>

#include "herd/data.h"

static char s_root[256];

static int s_rm(const char *path, const struct stat *sb, int flag,
                struct FTW *ftw)
{
  return remove(path);
}

static int s_setup(void **state)
{
  snprintf(s_root, sizeof(s_root), "/tmp/herd-test-data-XXXXXX");
  return mkdtemp(s_root) ? 0 : -1;
}

static int s_teardown(void **state)
{
  return nftw(s_root, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static void s_put_be32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static void s_write_gz(const char *dir, const char *name, const uint8_t *head,
                       size_t head_len, const uint8_t *body, size_t body_len)
{
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  gzFile gz = gzopen(path, "wb");
  assert_non_null(gz);
  assert_int_equal(gzwrite(gz, head, (unsigned)head_len), (int)head_len);
  if (body_len)
    assert_int_equal(gzwrite(gz, body, (unsigned)body_len), (int)body_len);
  assert_int_equal(gzclose(gz), Z_OK);
}

typedef struct {
  uint32_t magic, count, rows, cols;
  size_t body_len; /* pixels actually written */
} images_spec_t;

static void s_write_images(const char *dir, const char *prefix,
                           images_spec_t spec)
{
  uint8_t head[16], *body = malloc(spec.body_len + 1);
  s_put_be32(head, spec.magic);
  s_put_be32(head + 4, spec.count);
  s_put_be32(head + 8, spec.rows);
  s_put_be32(head + 12, spec.cols);
  for (size_t i = 0; i < spec.body_len; i++)
    body[i] = (uint8_t)(i * 7 + spec.count);
  char name[64];
  snprintf(name, sizeof(name), "%s-images-idx3-ubyte.gz", prefix);
  s_write_gz(dir, name, head, 16, body, spec.body_len);
  free(body);
}

static void s_write_labels(const char *dir, const char *prefix, uint32_t magic,
                           uint32_t count, size_t body_len, uint8_t bad_label)
{
  uint8_t head[8], *body = malloc(body_len + 1);
  s_put_be32(head, magic);
  s_put_be32(head + 4, count);
  for (size_t i = 0; i < body_len; i++)
    body[i] = (uint8_t)(i % 10);
  if (bad_label && body_len > 1)
    body[1] = bad_label;
  char name[64];
  snprintf(name, sizeof(name), "%s-labels-idx1-ubyte.gz", prefix);
  s_write_gz(dir, name, head, 8, body, body_len);
  free(body);
}

static images_spec_t s_good_images(uint32_t count)
{
  images_spec_t spec = {0x803, count, 28, 28, (size_t)count * 784};
  return spec;
}

/* A fresh directory with a valid set: 5 train and 3 test samples. */
static void s_make_valid(char *dir, size_t size, const char *name)
{
  snprintf(dir, size, "%s/%s", s_root, name);
  assert_int_equal(mkdir(dir, 0700), 0);
  s_write_images(dir, "train", s_good_images(5));
  s_write_labels(dir, "train", 0x801, 5, 5, 0);
  s_write_images(dir, "t10k", s_good_images(3));
  s_write_labels(dir, "t10k", 0x801, 3, 3, 0);
}

static int s_exists(const char *path) { return access(path, F_OK) == 0; }

/* Import must fail, name `file` (and `word`) and leave nothing behind. */
static void s_expect_failure(const char *dir, const char *file,
                             const char *word)
{
  char out[512], tmp[520];
  snprintf(out, sizeof(out), "%s/out.h5", dir);
  snprintf(tmp, sizeof(tmp), "%s.tmp", out);
  herd_result_t rc = herd_data_import_fashion_mnist(dir, out);
  const char *detail = herd_error_detail();
  if (rc == HERD_OK || !strstr(detail, file) || !strstr(detail, word))
    fail_msg("%s: rc %d detail '%s', want '%s' and '%s'", dir, rc, detail, file,
             word);
  print_message("%s\n", detail);
  assert_false(s_exists(out));
  assert_false(s_exists(tmp));
}

static void test_synthetic_valid(void **state)
{
  char dir[300], out[320];
  s_make_valid(dir, sizeof(dir), "valid");
  snprintf(out, sizeof(out), "%s/fm.h5", dir);
  assert_int_equal(herd_data_import_fashion_mnist(dir, out), HERD_OK);
  assert_true(s_exists(out));
  herd_dataset_t *ds = NULL;
  assert_int_equal(herd_dataset_load(out, &ds), HERD_OK);
  assert_int_equal(ds->train.count, 5);
  assert_int_equal(ds->test.count, 3);
  assert_int_equal(ds->train.rows, 28);
  assert_int_equal(ds->train.cols, 28);
  for (size_t i = 0; i < 5 * 784; i++)
    assert_int_equal(ds->train.images[i], (uint8_t)(i * 7 + 5));
  for (size_t i = 0; i < 3; i++)
    assert_int_equal(ds->test.labels[i], i % 10);
  herd_dataset_destroy(&ds);
  assert_null(ds);
  herd_dataset_destroy(&ds);
  /* Importing again replaces the file atomically. */
  assert_int_equal(herd_data_import_fashion_mnist(dir, out), HERD_OK);
}

static void test_bad_magic(void **state)
{
  char dir[300];
  s_make_valid(dir, sizeof(dir), "magic_images");
  images_spec_t spec = s_good_images(5);
  spec.magic = 0x802;
  s_write_images(dir, "train", spec);
  s_expect_failure(dir, "train-images-idx3-ubyte.gz", "magic");

  s_make_valid(dir, sizeof(dir), "magic_labels");
  s_write_labels(dir, "t10k", 0x803, 3, 3, 0);
  s_expect_failure(dir, "t10k-labels-idx1-ubyte.gz", "magic");
}

static void test_bad_dims(void **state)
{
  char dir[300];
  s_make_valid(dir, sizeof(dir), "dims");
  images_spec_t spec = {0x803, 5, 27, 28, 5 * 27 * 28};
  s_write_images(dir, "t10k", spec);
  s_expect_failure(dir, "t10k-images-idx3-ubyte.gz", "27x28");

  s_make_valid(dir, sizeof(dir), "count_zero");
  spec = s_good_images(0);
  s_write_images(dir, "train", spec);
  s_expect_failure(dir, "train-images-idx3-ubyte.gz", "count");

  s_make_valid(dir, sizeof(dir), "count_huge");
  spec = s_good_images(5);
  spec.count = 20000000;
  s_write_images(dir, "train", spec);
  s_expect_failure(dir, "train-images-idx3-ubyte.gz", "count");
}

static void test_truncated(void **state)
{
  char dir[300], path[400];
  s_make_valid(dir, sizeof(dir), "short_pixels");
  images_spec_t spec = s_good_images(5);
  spec.body_len = 1234;
  s_write_images(dir, "train", spec);
  s_expect_failure(dir, "train-images-idx3-ubyte.gz",
                   "truncated: expected 3920 bytes of pixels, got 1234");

  s_make_valid(dir, sizeof(dir), "short_labels");
  s_write_labels(dir, "t10k", 0x801, 3, 2, 0);
  s_expect_failure(dir, "t10k-labels-idx1-ubyte.gz", "truncated");

  s_make_valid(dir, sizeof(dir), "short_header");
  s_write_gz(dir, "train-labels-idx1-ubyte.gz", (const uint8_t *)"\0\0\x08", 3,
             NULL, 0);
  s_expect_failure(dir, "train-labels-idx1-ubyte.gz", "truncated");

  /* A gzip stream cut off on disk (the way a partial download looks). */
  s_make_valid(dir, sizeof(dir), "cut_gzip");
  snprintf(path, sizeof(path), "%s/train-images-idx3-ubyte.gz", dir);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(truncate(path, st.st_size / 2), 0);
  s_expect_failure(dir, "train-images-idx3-ubyte.gz", "truncated");

  s_make_valid(dir, sizeof(dir), "trailing");
  s_write_labels(dir, "train", 0x801, 5, 6, 0);
  s_expect_failure(dir, "train-labels-idx1-ubyte.gz", "trailing");
}

static void test_count_mismatch_and_labels(void **state)
{
  char dir[300];
  s_make_valid(dir, sizeof(dir), "mismatch");
  s_write_labels(dir, "train", 0x801, 4, 4, 0);
  s_expect_failure(dir, "train-labels-idx1-ubyte.gz", "5 images");

  s_make_valid(dir, sizeof(dir), "label10");
  s_write_labels(dir, "t10k", 0x801, 3, 3, 10);
  s_expect_failure(dir, "t10k-labels-idx1-ubyte.gz", "label 10");
}

static void test_not_gzip_and_missing(void **state)
{
  char dir[300], path[400];
  s_make_valid(dir, sizeof(dir), "plain");
  snprintf(path, sizeof(path), "%s/train-images-idx3-ubyte.gz", dir);
  FILE *f = fopen(path, "wb");
  uint8_t head[16] = {0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28};
  static uint8_t pixels[5 * 784];
  fwrite(head, 1, sizeof(head), f);
  fwrite(pixels, 1, sizeof(pixels), f);
  fclose(f);
  s_expect_failure(dir, "train-images-idx3-ubyte.gz", "not a gzip");

  /* Corrupt compressed bytes: zlib reports a data or CRC error. */
  s_make_valid(dir, sizeof(dir), "corrupt");
  snprintf(path, sizeof(path), "%s/t10k-images-idx3-ubyte.gz", dir);
  f = fopen(path, "r+b");
  fseek(f, 20, SEEK_SET);
  fputc(0xff, f);
  fputc(0x00, f);
  fclose(f);
  s_expect_failure(dir, "t10k-images-idx3-ubyte.gz", "");

  /* A wrong CRC in the gzip trailer: only seen when reading to the end. */
  s_make_valid(dir, sizeof(dir), "crc");
  snprintf(path, sizeof(path), "%s/train-labels-idx1-ubyte.gz", dir);
  f = fopen(path, "r+b");
  fseek(f, -8, SEEK_END);
  int byte = fgetc(f);
  fseek(f, -8, SEEK_END);
  fputc(byte ^ 0x5a, f);
  fclose(f);
  s_expect_failure(dir, "train-labels-idx1-ubyte.gz", "corrupt");

  s_make_valid(dir, sizeof(dir), "missing");
  snprintf(path, sizeof(path), "%s/t10k-labels-idx1-ubyte.gz", dir);
  assert_int_equal(unlink(path), 0);
  s_expect_failure(dir, "t10k-labels-idx1-ubyte.gz", "cannot open");

  /* Valid input, unwritable destination: an HDF5 failure, still named. */
  s_make_valid(dir, sizeof(dir), "unwritable");
  assert_int_not_equal(
      herd_data_import_fashion_mnist(dir, "/nonexistent-herd-dir/x.h5"),
      HERD_OK);
  assert_non_null(strstr(herd_error_detail(), "x.h5"));
}

static void test_load_rejects(void **state)
{
  char path[400];
  herd_dataset_t *ds = NULL;
  snprintf(path, sizeof(path), "%s/none.h5", s_root);
  assert_int_equal(herd_dataset_load(path, &ds), HERD_ENOENT);
  snprintf(path, sizeof(path), "%s/junk.h5", s_root);
  FILE *f = fopen(path, "wb");
  fputs("not hdf5", f);
  fclose(f);
  assert_int_equal(herd_dataset_load(path, &ds), HERD_EFORMAT);
  assert_non_null(strstr(herd_error_detail(), "junk.h5"));

  /* Valid HDF5, wrong shape and an out-of-range label. */
  snprintf(path, sizeof(path), "%s/shape.h5", s_root);
  hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  uint8_t data[4 * 28 * 28] = {0};
  data[0] = 12;
  const char *groups[] = {"/train", "/test"};
  for (int g = 0; g < 2; g++) {
    char name[64];
    hid_t group =
        H5Gcreate2(file, groups[g], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t idims[3] = {4, 28, 28}, ldims[1] = {g == 0 ? 4 : 3};
    hid_t is = H5Screate_simple(3, idims, NULL);
    hid_t ls = H5Screate_simple(1, ldims, NULL);
    snprintf(name, sizeof(name), "%s/images", groups[g]);
    hid_t d = H5Dcreate2(file, name, H5T_STD_U8LE, is, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d);
    snprintf(name, sizeof(name), "%s/labels", groups[g]);
    d = H5Dcreate2(file, name, H5T_STD_U8LE, ls, H5P_DEFAULT, H5P_DEFAULT,
                   H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d);
    H5Sclose(is);
    H5Sclose(ls);
    H5Gclose(group);
  }
  H5Fclose(file);
  assert_int_equal(herd_dataset_load(path, &ds), HERD_EFORMAT);
  assert_non_null(strstr(herd_error_detail(), "label 12"));
  assert_null(ds);
}

static void test_real_fashion_mnist(void **state)
{
  const char *src = HERD_FASHION_MNIST_DIR;
  char probe[256], out[320];
  snprintf(probe, sizeof(probe), "%s/train-images-idx3-ubyte.gz", src);
  if (!s_exists(probe)) {
    printf("skipping: %s not installed (apt install dataset-fashion-mnist)\n",
           src);
    skip();
  }
  snprintf(out, sizeof(out), "%s/fashion-mnist.h5", s_root);
  herd_result_t rc = herd_data_import_fashion_mnist(src, out);
  if (rc != HERD_OK)
    fail_msg("import: %s", herd_error_detail());
  herd_dataset_t *ds = NULL;
  assert_int_equal(herd_dataset_load(out, &ds), HERD_OK);
  assert_int_equal(ds->train.count, 60000);
  assert_int_equal(ds->test.count, 10000);
  assert_int_equal(ds->test.rows, 28);
  assert_int_equal(ds->test.cols, 28);
  /* Fashion-MNIST is balanced: 6000 / 1000 of each class. */
  int train_hist[10] = {0}, test_hist[10] = {0};
  for (size_t i = 0; i < ds->train.count; i++)
    train_hist[ds->train.labels[i]]++;
  for (size_t i = 0; i < ds->test.count; i++)
    test_hist[ds->test.labels[i]]++;
  for (int k = 0; k < 10; k++) {
    assert_int_equal(train_hist[k], 6000);
    assert_int_equal(test_hist[k], 1000);
  }
  /* Pixel mean matches the normalisation constant the trainer uses. */
  double sum = 0;
  for (size_t i = 0; i < ds->train.count * 784; i++)
    sum += ds->train.images[i];
  assert_true(fabs(sum / (ds->train.count * 784.0) / 255.0 - 0.2860) < 1e-3);
  herd_dataset_destroy(&ds);

  hid_t file = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t attr = H5Aopen(file, "source", H5P_DEFAULT);
  hid_t type = H5Aget_type(attr);
  char value[32] = {0};
  assert_true(H5Tget_size(type) < sizeof(value));
  assert_true(H5Aread(attr, type, value) >= 0);
  assert_string_equal(value, "fashion-mnist");
  H5Tclose(type);
  H5Aclose(attr);
  H5Fclose(file);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_synthetic_valid),
      cmocka_unit_test(test_bad_magic),
      cmocka_unit_test(test_bad_dims),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_count_mismatch_and_labels),
      cmocka_unit_test(test_not_gzip_and_missing),
      cmocka_unit_test(test_load_rejects),
      cmocka_unit_test(test_real_fashion_mnist),
  };
  return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
