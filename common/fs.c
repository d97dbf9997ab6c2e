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
#include "herd/log.h"

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

/* fsync then close fd, every return checked; fd is closed either way. */
static herd_result_t s_fsync_close(int fd, const char *path)
{
  if (fsync(fd) != 0) {
    int err = errno;
    close(fd);
    return s_fail(err, "fsync", path);
  }
  if (close(fd) != 0)
    return s_fail(errno, "close", path);
  return HERD_OK;
}

herd_result_t herd_fsync_path(const char *path, int is_dir)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | (is_dir ? O_DIRECTORY : 0));
  if (fd < 0)
    return s_fail(errno, "open for fsync", path);
  return s_fsync_close(fd, path);
}

static herd_result_t s_write_file(const char *path, const void *data,
                                  size_t len, mode_t mode)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd >= 0 && mode == 0600 && fchmod(fd, 0600) != 0) {
    int err = errno;
    close(fd);
    return s_fail(err, "chmod", path);
  }
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
  return s_fsync_close(fd, path);
}

herd_result_t herd_write_file(const char *path, const void *data, size_t len)
{
  return s_write_file(path, data, len, 0644);
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

static herd_result_t s_write_atomic(const char *path, const void *data,
                                    size_t len, mode_t mode)
{
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >=
      (int)sizeof tmp)
    return herd_error_set(HERD_EINVAL, "path too long: '%s'", path);
  unlink(tmp); /* a leftover would keep its old mode */
  herd_result_t rc = s_write_file(tmp, data, len, mode);
  if (rc != HERD_OK) {
    unlink(tmp);
    return rc;
  }
  return herd_rename_durably(tmp, path);
}

herd_result_t herd_write_file_atomic(const char *path, const void *data,
                                     size_t len)
{
  return s_write_atomic(path, data, len, 0644);
}

herd_result_t herd_write_secret_atomic(const char *path, const void *data,
                                       size_t len)
{
  return s_write_atomic(path, data, len, 0600);
}

herd_result_t herd_read_secret_file(const char *path, char *out, size_t cap,
                                    size_t *len_out)
{
  if (!path || !*path || !out || cap < 2)
    return herd_error_set(HERD_EINVAL, "secret file: bad arguments");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return herd_error_set(errno == ENOENT ? HERD_ENOENT : HERD_EIO,
                          "secret file '%s': %s", path, strerror(errno));
  struct stat st;
  herd_result_t rc = HERD_OK;
  ssize_t n = -1;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    rc = herd_error_set(HERD_EINVAL, "secret file '%s' is not a regular "
                        "file", path);
  else if (st.st_size >= (off_t)cap)
    rc = herd_error_set(HERD_ETOOBIG, "secret file '%s' is over %zu bytes",
                        path, cap - 1);
  else if ((n = read(fd, out, cap - 1)) < 0)
    rc = herd_error_set(HERD_EIO, "secret file '%s': %s", path,
                        strerror(errno));
  close(fd);
  if (rc != HERD_OK)
    return rc;
  size_t len = (size_t)n;
  while (len && (out[len - 1] == '\n' || out[len - 1] == '\r' ||
                 out[len - 1] == ' ' || out[len - 1] == '\t'))
    len--;
  out[len] = '\0';
  if (!len)
    return herd_error_set(HERD_EINVAL, "secret file '%s' is empty", path);
  if (st.st_mode & 077)
    HERD_LOG(HERD_LOG_WARN, "security", "secret file %s can be read by "
             "other users (mode %03o): chmod 600 it", path,
             (unsigned)(st.st_mode & 0777));
  if (len_out)
    *len_out = len;
  return HERD_OK;
}
