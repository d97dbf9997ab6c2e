/* Whole-file seal: a checksum over every byte of a checkpoint file.
 *
 * Fletcher32 and the content checksum cover what HDF5 reads back, but some
 * bytes of an HDF5 file are never read (free space, padding, unused fields
 * of metadata blocks): a flip there changes nothing a loader sees, yet a
 * file whose bytes changed on storage should not be called "verified". The
 * seal makes ANY change detectable: files are created with a 512-byte HDF5
 * user block (which HDF5, h5py and h5dump skip), and after HDF5 has closed
 * the temp file we hash bytes [512, EOF) and write a small header into the
 * user block, before the fsync and the rename. The header's own bytes are
 * hashed too, and the rest of the block must be zero. Layout: FORMAT.md.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sync_file_range */
#endif
#include "herd/settings.h"
#include "ckpt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAGIC "HERDCKPT"
#define S_SEAL_VERSION 1
#define S_HEADER_HASHED 32 /* bytes [0, 32) are covered by the header hash */
#define S_READ_BYTES ((size_t)8 << 20)

static void s_put_le(unsigned char *p, uint64_t value, int width)
{
  for (int i = 0; i < width; i++)
    p[i] = (unsigned char)(value >> (8 * i));
}

static uint64_t s_get_le(const unsigned char *p, int width)
{
  uint64_t value = 0;
  for (int i = width - 1; i >= 0; i--)
    value = (value << 8) | p[i];
  return value;
}

/* Hash of bytes [CKPT_USERBLOCK, length) of fd. */
static herd_result_t s_hash_body(int fd, uint64_t length, const char *path,
                                 uint64_t *out)
{
  unsigned char *buf = malloc(S_READ_BYTES);
  if (!buf)
    return HERD_ENOMEM;
  ckpt_hash_t hash;
  ckpt_hash_init(&hash);
  herd_result_t rc = HERD_OK;
  for (uint64_t off = CKPT_USERBLOCK; off < length;) {
    size_t want = length - off < S_READ_BYTES ? (size_t)(length - off)
                                              : S_READ_BYTES;
    ssize_t n = pread(fd, buf, want, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = n < 0 ? ckpt_errno_fail(errno, path, "read")
                 : herd_error_set(HERD_ECHECKSUM, "checkpoint '%s': short "
                                                  "read", path);
      break;
    }
    ckpt_hash_bytes(&hash, buf, (size_t)n);
    off += (uint64_t)n;
  }
  free(buf);
  *out = ckpt_hash_final(&hash);
  return rc;
}

static uint64_t s_header_hash(const unsigned char *header)
{
  ckpt_hash_t hash;
  ckpt_hash_init(&hash);
  ckpt_hash_bytes(&hash, header, S_HEADER_HASHED);
  return ckpt_hash_final(&hash);
}

static herd_result_t s_write_all(int fd, const unsigned char *data, size_t len,
                                 const char *path)
{
  for (size_t done = 0; done < len;) {
    ssize_t n = pwrite(fd, data + done, len - done, (off_t)done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return ckpt_errno_fail(n < 0 ? errno : EIO, path, "write seal");
    done += (size_t)n;
  }
  return HERD_OK;
}

void ckpt_start_writeback(int fd)
{
#if defined(__linux__) && defined(SYNC_FILE_RANGE_WRITE)
  (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* a hint only */
#else
  (void)fd;
#endif
}

herd_result_t ckpt_seal_write(const char *path)
{
  unsigned char header[CKPT_USERBLOCK] = {0};
  struct stat st;
  uint64_t body = 0;
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return ckpt_errno_fail(errno, path, "open for seal");
  herd_result_t rc = HERD_OK;
  if (fstat(fd, &st) != 0) {
    rc = ckpt_errno_fail(errno, path, "stat");
    goto out;
  }
  /* The disk writes the rest of the file while the body is hashed from the
   * page cache; the fsync below then mostly waits for what is in flight. */
  ckpt_start_writeback(fd);
  HERD_TRY(s_hash_body(fd, (uint64_t)st.st_size, path, &body));
  memcpy(header, S_MAGIC, 8);
  s_put_le(header + 8, S_SEAL_VERSION, 4);
  s_put_le(header + 12, CKPT_USERBLOCK, 4);
  s_put_le(header + 16, (uint64_t)st.st_size, 8);
  s_put_le(header + 24, body, 8);
  s_put_le(header + 32, s_header_hash(header), 8);
  HERD_TRY(s_write_all(fd, header, sizeof header, path));
  ckpt_fault_point("sealed");
  if (fsync(fd) != 0)
    rc = ckpt_errno_fail(errno, path, "fsync");
out:
  if (close(fd) != 0 && rc == HERD_OK)
    rc = ckpt_errno_fail(errno, path, "close");
  return rc;
}

static herd_result_t s_bad(const char *path, const char *what)
{
  return herd_error_set(HERD_ECHECKSUM, "checkpoint '%s': whole-file seal: %s",
                        path, what);
}

static herd_result_t s_check_header(const unsigned char *h, uint64_t size,
                                    const char *path)
{
  if (memcmp(h, S_MAGIC, 8) != 0)
    return s_bad(path, "no seal (not a herd v2 checkpoint, or damaged)");
  if (s_get_le(h + 8, 4) != S_SEAL_VERSION ||
      s_get_le(h + 12, 4) != CKPT_USERBLOCK)
    return s_bad(path, "unknown seal version");
  if (s_get_le(h + 32, 8) != s_header_hash(h))
    return s_bad(path, "header checksum mismatch");
  if (s_get_le(h + 16, 8) != size)
    return s_bad(path, "file length differs from the sealed length "
                       "(truncated or extended)");
  for (size_t i = 40; i < CKPT_USERBLOCK; i++)
    if (h[i] != 0)
      return s_bad(path, "user block padding is not zero");
  return HERD_OK;
}

herd_result_t ckpt_seal_check(const char *path)
{
  unsigned char header[CKPT_USERBLOCK];
  struct stat st;
  uint64_t body = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return herd_error_set(errno == ENOENT ? HERD_ENOENT : HERD_EIO,
                          "checkpoint '%s': %s", path, strerror(errno));
  herd_result_t rc = HERD_OK;
  if (fstat(fd, &st) != 0) {
    rc = ckpt_errno_fail(errno, path, "stat");
    goto out;
  }
  if (st.st_size < CKPT_USERBLOCK ||
      pread(fd, header, sizeof header, 0) != (ssize_t)sizeof header) {
    rc = s_bad(path, "file shorter than its user block");
    goto out;
  }
  HERD_TRY(s_check_header(header, (uint64_t)st.st_size, path));
  HERD_TRY(s_hash_body(fd, (uint64_t)st.st_size, path, &body));
  if (body != s_get_le(header + 24, 8))
    rc = s_bad(path, "content bytes changed");
out:
  close(fd);
  return rc;
}

/* --- fault injection ------------------------------------------------------ */

void ckpt_fault_point(const char *point)
{
  static int hits;
  const char *spec = herd_setting_string(HERD_S_CKPT_FAULT);
  if (!spec || !spec[0])
    return;
  size_t len = strlen(point);
  if (strncmp(spec, point, len) != 0 || (spec[len] && spec[len] != ':'))
    return;
  int nth = spec[len] == ':' ? atoi(spec + len + 1) : 1;
  if (++hits >= nth)
    raise(SIGKILL);
}
