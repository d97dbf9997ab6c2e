/* Checkpoint directory logic: herd_ckpt_find_latest and herd_ckpt_prune.
 *
 * `latest` is only a hint: it is trusted when it names the newest committed
 * file and that file verifies (a kill between the rename and the pointer
 * update leaves it one behind; the renamed file is committed and wins). A missing, garbled or dangling pointer, or a
 * damaged newest file, falls back to the committed files, newest step first.
 * Only names of the exact form ckpt-NNNNNNNNNN.h5 count as committed, so a
 * temp file can never be picked up. Every skipped candidate is logged at
 * WARN with the reason, because it means a save or the storage went wrong.
 */
#include "herd/fs.h"
#include "ckpt_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herd/log.h"

/* Reads and checks `<dir>/latest` (at most a name, a newline and one byte to
 * detect longer content). HERD_ENOENT when absent, HERD_EFORMAT when not a
 * plain checkpoint file name. */
static herd_result_t s_read_latest(const char *dir, int64_t *step)
{
  char path[PATH_MAX], buf[CKPT_FILE_NAME_LEN + 3];
  size_t len = 0;
  HERD_CHECK(ckpt_join(path, sizeof path, dir, CKPT_LATEST));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return herd_error_set(errno == ENOENT ? HERD_ENOENT : HERD_EIO, "'%s': %s",
                          path, strerror(errno));
  while (len < sizeof buf - 1) {
    ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  if (len > 0 && buf[len - 1] == '\n')
    buf[--len] = '\0';
  if (!ckpt_parse_name(buf, step))
    return herd_error_set(HERD_EFORMAT, "'%s' does not name a checkpoint",
                          path);
  return HERD_OK;
}

/* Verifies step's file; path receives its path either way. */
static herd_result_t s_try_step(const char *dir, int64_t step, char *path,
                                size_t cap)
{
  char name[CKPT_FILE_NAME_LEN + 1];
  ckpt_file_name(step, name);
  HERD_CHECK(ckpt_join(path, cap, dir, name));
  return ckpt_verify_locked(path);
}

static herd_result_t s_scan(const char *dir, int64_t skip_step, char *path,
                            size_t cap)
{
  int64_t *steps = NULL;
  size_t count = 0;
  herd_result_t rc = ckpt_list_steps(dir, &steps, &count);
  if (rc != HERD_OK)
    return rc == HERD_ENOMEM ? rc : HERD_ENOENT;
  rc = HERD_ENOENT;
  for (size_t i = 0; i < count && rc != HERD_OK; i++) {
    if (steps[i] == skip_step)
      continue;
    rc = s_try_step(dir, steps[i], path, cap);
    if (rc != HERD_OK)
      HERD_LOG(HERD_LOG_WARN, "ckpt", "skipping '%s': %s (%s)", path,
               herd_error_detail(), herd_err_name(rc));
  }
  free(steps);
  if (rc != HERD_OK)
    return herd_error_set(HERD_ENOENT, "no valid checkpoint in '%s'", dir);
  return HERD_OK;
}

/* Newest committed step in dir, -1 when none or unreadable. */
static int64_t s_newest_step(const char *dir)
{
  int64_t *steps = NULL, newest = -1;
  size_t count = 0;
  if (ckpt_list_steps(dir, &steps, &count) == HERD_OK && count > 0)
    newest = steps[0];
  free(steps);
  return newest;
}

herd_result_t herd_ckpt_find_latest(const char *dir, char *path_out,
                                    size_t path_cap)
{
  char path[PATH_MAX];
  int64_t step = -1;
  if (!dir || !path_out)
    return herd_error_set(HERD_EINVAL, "herd_ckpt_find_latest: NULL argument");
  if (strlen(dir) + 1 + CKPT_FILE_NAME_LEN >= path_cap)
    return herd_error_set(HERD_EINVAL, "path_out too small for '%s'", dir);
  ckpt_lock();
  herd_result_t rc = s_read_latest(dir, &step);
  if (rc == HERD_OK && step < s_newest_step(dir)) {
    /* A kill between the rename and the pointer update leaves `latest`
     * one behind: the renamed file is committed, so it wins. */
    HERD_LOG(HERD_LOG_INFO, "ckpt", "'latest' names step %lld, a newer "
             "checkpoint is committed", (long long)step);
    rc = HERD_ENOENT;
    step = -1;
  }
  if (rc == HERD_OK) {
    rc = s_try_step(dir, step, path, sizeof path);
    if (rc != HERD_OK)
      HERD_LOG(HERD_LOG_WARN, "ckpt", "latest '%s' unusable: %s (%s)", path,
               herd_error_detail(), herd_err_name(rc));
  } else if (rc != HERD_ENOENT) {
    HERD_LOG(HERD_LOG_WARN, "ckpt", "ignoring pointer: %s",
             herd_error_detail());
  }
  if (rc != HERD_OK)
    rc = s_scan(dir, step, path, sizeof path);
  ckpt_unlock();
  if (rc == HERD_OK)
    memcpy(path_out, path, strlen(path) + 1);
  return rc;
}

/* A temp file is stale when a checkpoint at least as new is committed: its
 * save either failed or was superseded. Newer temp files are left alone in
 * case their save is still running in another process. */
static bool s_stale_tmp(const char *name, int64_t newest_step)
{
  char base[CKPT_FILE_NAME_LEN + 1];
  size_t len = strnlen(name, CKPT_FILE_NAME_LEN + 5);
  int64_t step;
  if (strcmp(name, CKPT_LATEST CKPT_TMP_SUFFIX) == 0)
    return true;
  if (len != CKPT_FILE_NAME_LEN + 4 || strcmp(name + 18, CKPT_TMP_SUFFIX))
    return false;
  memcpy(base, name, CKPT_FILE_NAME_LEN);
  base[CKPT_FILE_NAME_LEN] = '\0';
  return ckpt_parse_name(base, &step) && step <= newest_step;
}

static herd_result_t s_unlink(const char *dir, const char *name)
{
  char path[PATH_MAX];
  HERD_CHECK(ckpt_join(path, sizeof path, dir, name));
  if (unlink(path) != 0 && errno != ENOENT)
    return ckpt_errno_fail(errno, path, "unlink");
  HERD_LOG(HERD_LOG_DEBUG, "ckpt", "pruned '%s'", path);
  return HERD_OK;
}

static herd_result_t s_prune_tmps(const char *dir, int64_t newest_step)
{
  herd_result_t rc = HERD_OK, one;
  DIR *d = opendir(dir);
  if (!d)
    return ckpt_errno_fail(errno, dir, "opendir");
  struct dirent *entry;
  while ((entry = readdir(d)) != NULL) {
    if (s_stale_tmp(entry->d_name, newest_step) &&
        (one = s_unlink(dir, entry->d_name)) != HERD_OK && rc == HERD_OK)
      rc = one;
  }
  closedir(d);
  return rc;
}

herd_result_t herd_ckpt_prune(const char *dir, int keep)
{
  int64_t *steps = NULL, latest_step = -1;
  size_t count = 0;
  char name[CKPT_FILE_NAME_LEN + 1];
  if (!dir || keep < 1)
    return herd_error_set(HERD_EINVAL, "herd_ckpt_prune: keep must be >= 1");
  ckpt_lock();
  herd_result_t rc = ckpt_list_steps(dir, &steps, &count), one;
  if (rc != HERD_OK)
    goto out;
  /* The file `latest` names is kept even when older: it is what a restart
   * would load first. */
  if (s_read_latest(dir, &latest_step) != HERD_OK)
    latest_step = -1;
  for (size_t i = (size_t)keep; i < count; i++) {
    if (steps[i] == latest_step)
      continue;
    ckpt_file_name(steps[i], name);
    if ((one = s_unlink(dir, name)) != HERD_OK && rc == HERD_OK)
      rc = one;
  }
  one = s_prune_tmps(dir, count > 0 ? steps[0] : -1);
  if (rc == HERD_OK)
    rc = one;
  one = herd_fsync_path(dir, 1);
  if (rc == HERD_OK)
    rc = one;
out:
  ckpt_unlock();
  free(steps);
  return rc;
}
