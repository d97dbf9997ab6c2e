/* POSIX side of the checkpoint commit protocol: durable small writes, fsync
 * of files and directories, checkpoint file names and directory listing.
 *
 * Every close/fsync return is checked: on Linux a failed fsync may drop the
 * dirty pages and report the error only once, so an ignored error means a
 * "committed" checkpoint that is not on disk (DESIGN.md, "Checkpoints").
 */
#include "ckpt_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A directory with more committed checkpoints than this is not ours. */
#define CKPT_LIST_MAX 1000000

herd_result_t ckpt_errno_fail(int err, const char *path, const char *what)
{
  herd_result_t rc = err == ENOSPC ? HERD_ENOSPC : HERD_EIO;
  return herd_error_set(rc, "checkpoint '%s': %s: %s", path, what,
                        strerror(err));
}

herd_result_t ckpt_join(char *buf, size_t cap, const char *dir,
                        const char *name)
{
  int n = snprintf(buf, cap, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= cap)
    return herd_error_set(HERD_EINVAL, "checkpoint path too long: '%s/%s'", dir,
                          name);
  return HERD_OK;
}

void ckpt_file_name(int64_t step, char name[CKPT_FILE_NAME_LEN + 1])
{
  snprintf(name, CKPT_FILE_NAME_LEN + 1, "ckpt-%010lld.h5", (long long)step);
}

bool ckpt_parse_name(const char *name, int64_t *step)
{
  if (strnlen(name, CKPT_FILE_NAME_LEN + 1) != CKPT_FILE_NAME_LEN ||
      strncmp(name, "ckpt-", 5) != 0 || strcmp(name + 15, ".h5") != 0)
    return false;
  int64_t value = 0;
  for (int i = 5; i < 15; i++) {
    if (name[i] < '0' || name[i] > '9')
      return false;
    value = value * 10 + (name[i] - '0');
  }
  *step = value;
  return true;
}

static int s_step_desc(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x < y) - (x > y);
}

/* Appends `step`, doubling the array as needed. */
static herd_result_t s_push(int64_t **steps, size_t *count, size_t *cap,
                            int64_t step)
{
  if (*count == *cap) {
    if (*cap >= CKPT_LIST_MAX)
      return herd_error_set(HERD_ETOOBIG, "more than %d checkpoints",
                            CKPT_LIST_MAX);
    size_t new_cap = *cap ? *cap * 2 : 16;
    int64_t *grown = realloc(*steps, new_cap * sizeof **steps);
    if (!grown)
      return HERD_ENOMEM;
    *steps = grown;
    *cap = new_cap;
  }
  (*steps)[(*count)++] = step;
  return HERD_OK;
}

herd_result_t ckpt_list_steps(const char *dir, int64_t **steps_out,
                              size_t *count_out)
{
  herd_result_t rc = HERD_OK;
  int64_t *steps = NULL;
  size_t count = 0, cap = 0;
  DIR *d = opendir(dir);
  if (!d) {
    int err = errno;
    return herd_error_set(err == ENOENT ? HERD_ENOENT : HERD_EIO,
                          "checkpoint directory '%s': %s", dir, strerror(err));
  }
  struct dirent *entry;
  int64_t step;
  while ((entry = readdir(d)) != NULL) {
    if (ckpt_parse_name(entry->d_name, &step))
      HERD_TRY(s_push(&steps, &count, &cap, step));
  }
  if (count > 1)
    qsort(steps, count, sizeof *steps, s_step_desc);
  *steps_out = steps;
  *count_out = count;
  steps = NULL;
out:
  free(steps);
  closedir(d);
  return rc;
}
