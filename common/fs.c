/* The file-system helpers of include/herd/fs.h: mkdir -p and the durable
 * writes that checkpoints, summary.json and the dataset import share. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herd/fs.h"

herd_result_t herd_mkdir_p(const char *path, mode_t mode)
{
  char buf[PATH_MAX];
  size_t len = path ? strlen(path) : 0;
  if (len == 0 || len >= sizeof buf)
    return herd_error_set(HERD_EINVAL, "bad folder name '%s'",
                          path ? path : "");
  memcpy(buf, path, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (buf[i] != '/' && buf[i] != '\0')
      continue;
    char saved = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
      return herd_error_set(errno == ENOSPC ? HERD_ENOSPC : HERD_EIO,
                            "cannot create folder '%s': %s", buf,
                            strerror(errno));
    buf[i] = saved;
  }
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
    return herd_error_set(HERD_EIO, "'%s' is not a folder", path);
  return HERD_OK;
}

static herd_result_t s_fail(int err, const char *what, const char *path)
{
  return herd_error_set(err == ENOSPC ? HERD_ENOSPC : HERD_EIO,
                        "cannot %s '%s': %s", what, path, strerror(err));
}

herd_result_t herd_fsync_path(const char *path, int is_dir)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | (is_dir ? O_DIRECTORY : 0));
  if (fd < 0)
    return s_fail(errno, "open for fsync", path);
  if (fsync(fd) != 0) {
    int err = errno;
    close(fd);
    return s_fail(err, "fsync", path);
  }
  if (close(fd) != 0)
    return s_fail(errno, "close", path);
  return HERD_OK;
}

herd_result_t herd_write_file(const char *path, const void *data, size_t len)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return s_fail(errno, "create", path);
  for (size_t done = 0; done < len;) {
    ssize_t n = write(fd, (const char *)data + done, len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      close(fd);
      return s_fail(err, "write", path);
    }
    done += (size_t)n;
  }
  if (fsync(fd) != 0) {
    int err = errno;
    close(fd);
    return s_fail(err, "fsync", path);
  }
  if (close(fd) != 0)
    return s_fail(errno, "close", path);
  return HERD_OK;
}

herd_result_t herd_rename_durably(const char *tmp, const char *final)
{
  if (rename(tmp, final) != 0) {
    int err = errno;
    unlink(tmp);
    return herd_error_set(HERD_EIO, "cannot rename '%s' to '%s': %s", tmp,
                          final, strerror(err));
  }
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", final);
  char *slash = strrchr(dir, '/');
  if (!slash)
    snprintf(dir, sizeof dir, ".");
  else if (slash == dir)
    slash[1] = '\0'; /* "/name": the root */
  else
    *slash = '\0';
  return herd_fsync_path(dir, 1);
}

herd_result_t herd_write_file_atomic(const char *path, const void *data,
                                     size_t len)
{
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >=
      (int)sizeof tmp)
    return herd_error_set(HERD_EINVAL, "path too long: '%s'", path);
  herd_result_t rc = herd_write_file(tmp, data, len);
  if (rc != HERD_OK) {
    unlink(tmp);
    return rc;
  }
  return herd_rename_durably(tmp, path);
}
