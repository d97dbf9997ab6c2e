/* What the file-loader fuzz targets (fuzz_ckpt.c, fuzz_data.c) share: a
 * scratch folder, writing the input as a file, and the two properties they
 * check beyond "no crash": every refusal says why, and no HDF5 id is left
 * open (an id left open is memory and a file descriptor per bad file, for
 * good). */
#ifndef HERD_FUZZ_FILES_H
#define HERD_FUZZ_FILES_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hdf5.h"
#include "herd/result.h"

/* TMPDIR/herd-fuzz-TARGET-PID, made on the first call. */
static inline const char *fuzz_scratch_dir(const char *target)
{
  static char dir[PATH_MAX];
  if (!dir[0]) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/herd-fuzz-%s-%d", tmp ? tmp : "/tmp",
             target, (int)getpid());
    mkdir(dir, 0700);
  }
  return dir;
}

/* The harness's own disk failing is not a finding: abort loudly. */
static inline void fuzz_write_file(const char *path, const uint8_t *data,
                                   size_t size)
{
  FILE *file = fopen(path, "wb");
  if (!file || fwrite(data, 1, size, file) != size || fclose(file) != 0) {
    perror(path);
    abort();
  }
}

static inline void fuzz_require_detail(const char *target, herd_result_t rc)
{
  if (rc != HERD_OK && herd_error_detail()[0] == '\0') {
    fprintf(stderr, "%s: result %d without a detail\n", target, (int)rc);
    abort();
  }
}

/* Whether `data` is an HDF5 file whose superblock is version 2 or newer,
 * i.e. one whose metadata blocks all carry checksums (what herd writes:
 * checkpoints and, since 2026-12, datasets, with the 1.10 object formats).
 * The targets hand HDF5 only such files. Debian's libhdf5 1.10.8 itself
 * crashes on some damaged files of the older, unchecked formats (a NULL
 * memcpy in H5F__accum_read after a failed allocation of a local heap
 * that a damaged file claims is 578 PB): that is the library's to fix, not
 * herd's, and fuzzing it here would only make `make fuzz` fail at random.
 * herd's loaders still open such files (h5py writes them by default). */
static inline int fuzz_checksummed_hdf5(const uint8_t *data, size_t size)
{
  static const uint8_t signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a,
                                       '\n'};
  /* The superblock sits at 0, or after a user block of 512, 1024, ... */
  for (size_t at = 0; at + 9 <= size; at = at ? at * 2 : 512)
    if (!memcmp(data + at, signature, sizeof signature))
      return data[at + 8] >= 2;
  return 0;
}

static inline void fuzz_require_all_closed(const char *target)
{
  ssize_t open_ids = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  if (open_ids != 0) {
    fprintf(stderr, "%s: %zd HDF5 ids left open\n", target, open_ids);
    abort();
  }
}

#endif
