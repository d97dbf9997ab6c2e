/* libFuzzer target: the checkpoint reader (herd_ckpt_verify, read_meta,
 * list_tensors, load) on arbitrary file bytes. The first input byte picks
 * how the rest becomes a file: bit 0 clear, as it is (the whole-file seal
 * must then refuse almost everything); bit 0 set, resealed by the harness
 * (ckpt_seal_write), so the bytes behind a valid seal reach HDF5 and the
 * attribute, name and tensor checks, as a file written by a buggy or
 * hostile writer would. Nothing may crash, leak or trip a sanitizer, and
 * every refusal must say why (a non-empty herd_error_detail). Bytes reach
 * HDF5 only when they are an HDF5 file with checksummed metadata
 * (fuzz_files.h: the format herd writes); raw bytes otherwise meet only the
 * seal, which refuses them before HDF5 sees them. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt_internal.h"
#include "herd/ckpt.h"
#include "herd/log.h"
#include "fuzz_files.h"

/* The loader sizes nothing from the file (the caller owns the buffers), but
 * this harness does, from list_tensors: keep it small. */
#define S_MAX_LOAD_BYTES ((size_t)64 << 20)

/* Loads every listed tensor into buffers of the listed shape. */
static void s_load_listed(const char *path, herd_ckpt_meta_t *meta)
{
  herd_ckpt_tensor_info_t infos[HERD_CKPT_MAX_TENSORS];
  herd_tensor_t tensors[HERD_CKPT_MAX_TENSORS];
  size_t count = 0, bytes = 0;
  herd_result_t rc = herd_ckpt_list_tensors(path, infos, HERD_CKPT_MAX_TENSORS,
                                            &count);
  fuzz_require_detail("fuzz_ckpt", rc);
  if (rc != HERD_OK || count > HERD_CKPT_MAX_TENSORS)
    return;
  for (size_t i = 0; i < count; i++) {
    size_t size = herd_dtype_size(infos[i].dtype);
    if (size == 0 || infos[i].count > S_MAX_LOAD_BYTES / size ||
        bytes + infos[i].count * size > S_MAX_LOAD_BYTES)
      return;
    bytes += infos[i].count * size;
  }
  size_t i = 0;
  for (; i < count; i++) {
    size_t size = herd_dtype_size(infos[i].dtype);
    tensors[i] = (herd_tensor_t){infos[i].name, infos[i].dtype,
                                 malloc(infos[i].count * size + 1),
                                 infos[i].count};
    if (!tensors[i].data)
      break;
  }
  if (i == count)
    fuzz_require_detail("fuzz_ckpt", herd_ckpt_load(path, meta, tensors, count));
  while (i-- > 0)
    free(tensors[i].data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  herd_log_level_g = -1; /* quiet: the fuzzer prints enough */
  const char *dir = fuzz_scratch_dir("ckpt");
  if (size < 1)
    return 0;
  int reseal = data[0] & 1;
  char path[PATH_MAX + 32], named[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/ckpt-0000000000.h5", dir);
  fuzz_write_file(path, data + 1, size - 1);
  int to_hdf5 = fuzz_checksummed_hdf5(data + 1, size - 1);
  if (reseal && to_hdf5 && size - 1 >= CKPT_USERBLOCK)
    (void)ckpt_seal_write(path);
  /* Unresealed bytes meet the seal first: only an intact file passes it. */
  fuzz_require_detail("fuzz_ckpt", herd_ckpt_verify(path));
  if (!to_hdf5) {
    unlink(path);
    fuzz_require_all_closed("fuzz_ckpt");
    return 0;
  }
  herd_ckpt_meta_t meta;
  herd_result_t rc = herd_ckpt_read_meta(path, &meta);
  fuzz_require_detail("fuzz_ckpt", rc);
  /* The loader insists the file name carries the recorded step. */
  if (rc == HERD_OK && meta.step >= 0 && meta.step <= 9999999999LL) {
    snprintf(named, sizeof named, "%s/ckpt-%010lld.h5", dir,
             (long long)meta.step);
    if (rename(path, named) == 0)
      memcpy(path, named, sizeof path);
  }
  s_load_listed(path, &meta);
  unlink(path);
  fuzz_require_all_closed("fuzz_ckpt");
  return 0;
}
