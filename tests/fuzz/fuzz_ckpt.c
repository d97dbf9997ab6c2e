/* libFuzzer target: the checkpoint reader (herd_ckpt_verify, read_meta,
 * list_tensors, load) on arbitrary file bytes. The first input byte picks
 * how the rest becomes a file: bit 0 clear, as it is (the whole-file seal
 * must then refuse almost everything); bit 0 set, resealed by the harness
 * (ckpt_seal_write), so the bytes behind a valid seal reach HDF5 and the
 * attribute, name and tensor checks, as a file written by a buggy or
 * hostile writer would. Nothing may crash, leak or trip a sanitizer, and
 * every refusal must say why (a non-empty herd_error_detail). */
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
#include "hdf5.h"

/* The loader sizes nothing from the file (the caller owns the buffers), but
 * this harness does, from list_tensors: keep it small. */
#define S_MAX_LOAD_BYTES ((size_t)64 << 20)

static char s_dir[PATH_MAX];

/* Every HDF5 object the loaders opened is closed again, on every path (an
 * id left open is memory and a file descriptor per bad file, for good). */
static void s_require_all_closed(void)
{
  ssize_t open_ids = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  if (open_ids != 0) {
    fprintf(stderr, "%s: %zd HDF5 ids left open\n", "fuzz_ckpt",
            open_ids);
    abort();
  }
}

static void s_require_detail(herd_result_t rc)
{
  if (rc != HERD_OK && herd_error_detail()[0] == '\0') {
    fprintf(stderr, "fuzz_ckpt: result %d without a detail\n", (int)rc);
    abort();
  }
}

static int s_write(const char *path, const uint8_t *data, size_t size)
{
  FILE *file = fopen(path, "wb");
  if (!file)
    return -1;
  size_t wrote = fwrite(data, 1, size, file);
  return fclose(file) == 0 && wrote == size ? 0 : -1;
}

/* Loads every listed tensor into buffers of the listed shape. */
static void s_load_listed(const char *path, herd_ckpt_meta_t *meta)
{
  herd_ckpt_tensor_info_t infos[HERD_CKPT_MAX_TENSORS];
  herd_tensor_t tensors[HERD_CKPT_MAX_TENSORS];
  size_t count = 0, bytes = 0;
  herd_result_t rc = herd_ckpt_list_tensors(path, infos, HERD_CKPT_MAX_TENSORS,
                                            &count);
  s_require_detail(rc);
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
    s_require_detail(herd_ckpt_load(path, meta, tensors, count));
  while (i-- > 0)
    free(tensors[i].data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  herd_log_level_g = -1; /* quiet: the fuzzer prints enough */
  if (!s_dir[0]) {
    snprintf(s_dir, sizeof s_dir, "%s/herd-fuzz-ckpt-%d",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    mkdir(s_dir, 0700);
  }
  if (size < 1)
    return 0;
  int reseal = data[0] & 1;
  char path[PATH_MAX + 32], named[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/ckpt-0000000000.h5", s_dir);
  if (s_write(path, data + 1, size - 1) != 0)
    abort(); /* the harness's own disk: not a finding */
  if (reseal && size - 1 >= CKPT_USERBLOCK)
    (void)ckpt_seal_write(path);
  s_require_detail(herd_ckpt_verify(path));
  herd_ckpt_meta_t meta;
  herd_result_t rc = herd_ckpt_read_meta(path, &meta);
  s_require_detail(rc);
  /* The loader insists the file name carries the recorded step. */
  if (rc == HERD_OK && meta.step >= 0 && meta.step <= 9999999999LL) {
    snprintf(named, sizeof named, "%s/ckpt-%010lld.h5", s_dir,
             (long long)meta.step);
    if (rename(path, named) == 0)
      memcpy(path, named, sizeof path);
  }
  s_load_listed(path, &meta);
  unlink(path);
  s_require_all_closed();
  return 0;
}
