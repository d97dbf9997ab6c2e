/* The file-system helpers of include/herd/fs.h. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

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
