/* libFuzzer target: the dataset loaders on arbitrary file bytes. The first
 * input byte picks the file the rest becomes:
 *   0      an HDF5 dataset, read by herd_dataset_load (what herd-train and
 *          `herd data inspect` open), when it has checksummed metadata
 *          (fuzz_files.h);
 *   1 - 4  one of the four IDX files that herd_data_import_fashion_mnist
 *          reads (train images, train labels, test images, test labels;
 *          the bytes as the file, which must be gzip), the other three
 *          valid two-sample gzip files, and the
 *          imported HDF5 file loaded again when the import succeeds.
 * Nothing may crash, leak or trip a sanitizer, and every refusal must say
 * why (a non-empty herd_error_detail). */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "herd/data.h"
#include "herd/log.h"
#include "fuzz_files.h"

#define S_SAMPLES 2
#define S_SIDE 28

static const char *const s_idx_names[4] = {
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};

static void s_write(const char *name, const uint8_t *data, size_t size)
{
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", fuzz_scratch_dir("data"), name);
  fuzz_write_file(path, data, size);
}

static void s_put_be32(uint8_t *p, uint32_t value)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(value >> (24 - 8 * i));
}

/* A valid gzip IDX file of S_SAMPLES samples. */
static void s_write_valid_idx(int which)
{
  uint8_t buf[16 + S_SAMPLES * S_SIDE * S_SIDE];
  int images = which % 2 == 0;
  size_t header = images ? 16 : 8;
  size_t body = images ? S_SAMPLES * S_SIDE * S_SIDE : S_SAMPLES;
  s_put_be32(buf, images ? 0x803 : 0x801);
  s_put_be32(buf + 4, S_SAMPLES);
  if (images) {
    s_put_be32(buf + 8, S_SIDE);
    s_put_be32(buf + 12, S_SIDE);
  }
  for (size_t i = 0; i < body; i++)
    buf[header + i] = (uint8_t)(i % 10);
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", fuzz_scratch_dir("data"),
           s_idx_names[which]);
  gzFile gz = gzopen(path, "wb1");
  if (!gz || gzwrite(gz, buf, (unsigned)(header + body)) <= 0 ||
      gzclose(gz) != Z_OK)
    abort(); /* the harness's own disk: not a finding */
}

static void s_load(const char *path)
{
  herd_dataset_t *dataset = NULL;
  fuzz_require_detail("fuzz_data", herd_dataset_load(path, &dataset));
  herd_dataset_destroy(&dataset);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  herd_log_level_g = -1; /* quiet: the fuzzer prints enough */
  if (size < 1)
    return 0;
  char h5[PATH_MAX + 16];
  snprintf(h5, sizeof h5, "%s/data.h5", fuzz_scratch_dir("data"));
  int mode = data[0] % 5;
  if (mode == 0) {
    if (!fuzz_checksummed_hdf5(data + 1, size - 1))
      return 0; /* see fuzz_files.h: what HDF5 is handed */
    s_write("data.h5", data + 1, size - 1);
    s_load(h5);
  } else {
    for (int i = 0; i < 4; i++)
      if (i != mode - 1)
        s_write_valid_idx(i);
    s_write(s_idx_names[mode - 1], data + 1, size - 1);
    herd_result_t rc = herd_data_import_fashion_mnist(fuzz_scratch_dir("data"), h5);
    fuzz_require_detail("fuzz_data", rc);
    if (rc == HERD_OK)
      s_load(h5);
  }
  unlink(h5);
  fuzz_require_all_closed("fuzz_data");
  return 0;
}
