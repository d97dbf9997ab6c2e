/* Datasets for the reference trainer.
 *
 * herd_data_import_fashion_mnist() converts the four IDX (gzip) files of
 * Debian's dataset-fashion-mnist package into one HDF5 file:
 *   /train/images uint8 [N,28,28], /train/labels uint8 [N],
 *   /test/images, /test/labels likewise.
 * It checks magic numbers, dimensions and counts, writes to a temp file and
 * renames it into place, so a failure leaves no partial output. The file
 * uses the HDF5 1.10 object formats (every metadata block checksummed, as
 * checkpoints); the loader also reads older HDF5 files (h5py's default).
 */
#ifndef HERD_DATA_H
#define HERD_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "herd/result.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HERD_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Errors name the offending file and problem in herd_error_detail(). */
herd_result_t herd_data_import_fashion_mnist(const char *src_dir,
                                             const char *out_path);

typedef struct {
  uint8_t *images; /* count * rows * cols */
  uint8_t *labels; /* count, each < 10 */
  size_t count;
  int rows, cols;
} herd_data_split_t;

typedef struct {
  herd_data_split_t train, test;
} herd_dataset_t;

/* Loads an imported file; validates shapes and label range.
 * Caller owns *out (free with herd_dataset_destroy). */
herd_result_t herd_dataset_load(const char *path, herd_dataset_t **out);
void herd_dataset_destroy(herd_dataset_t **dataset_p);

#ifdef __cplusplus
}
#endif
#endif
