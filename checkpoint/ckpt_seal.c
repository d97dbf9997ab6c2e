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
 *
 * Version 2 of the seal adds a SHA-256 of the same bytes, and, when a
 * checkpoint key is set (HERD_CKPT_KEY_FILE, herd_ckpt_set_key_file), an
 * HMAC-SHA256 of the header under that key. The FNV hashes find accidents;
 * anyone who can write the file can recompute them, and the SHA-256 too,
 * but not the HMAC without the key: with a key set, a file whose HMAC does
 * not match (or that has none) is refused as tampered (HERD_EAUTH), and
 * find_latest falls back to the previous good checkpoint.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sync_file_range */
#endif
#include "herd/settings.h"
#include "ckpt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herd/fs.h"

#define S_MAGIC "HERDCKPT"
#define S_SEAL_VERSION 2
#define S_READ_BYTES ((size_t)8 << 20)
/* Version 1: the header hash at 32 covers [0, 32); zero from 40. */
#define S_V1_HASHED 32
/* Version 2: SHA-256 of the body at 32, flags at 64, HMAC of [0, 68) at
 * 68, header hash of [0, 100) at 100; zero from 108. */
#define S_SHA256_AT 32
#define S_FLAGS_AT 64
#define S_HMAC_AT 68
#define S_HMAC_SIGNED 68 /* bytes [0, 68) are what the HMAC signs */
#define S_V2_HASHED 100
#define S_V2_END 108
#define S_FLAG_HMAC 1u
#define S_KEY_MIN 16
#define S_KEY_MAX 4096

/* The checkpoint key (HMAC-SHA256), read once. */
static struct {
  pthread_mutex_t lock;
  int loaded; /* 1: key/len are what the setting or the API said */
  unsigned char key[S_KEY_MAX];
  size_t len; /* 0: no key */
} s_key = {PTHREAD_MUTEX_INITIALIZER, 0, {0}, 0};

static herd_result_t s_load_key_locked(const char *path)
{
  s_key.loaded = 1;
  s_key.len = 0;
  if (!path || !*path)
    return HERD_OK;
  char buf[S_KEY_MAX + 1];
  size_t len = 0;
  herd_result_t rc = herd_read_secret_file(path, buf, sizeof buf, &len);
  if (rc == HERD_OK && len < S_KEY_MIN)
    rc = herd_error_set(HERD_EINVAL, "checkpoint key file '%s': %zu bytes, "
                        "need at least %d", path, len, S_KEY_MIN);
  if (rc == HERD_OK) {
    memcpy(s_key.key, buf, len);
    s_key.len = len;
  }
  OPENSSL_cleanse(buf, sizeof buf);
  return rc;
}

herd_result_t herd_ckpt_set_key_file(const char *path)
{
  pthread_mutex_lock(&s_key.lock);
  herd_result_t rc = s_load_key_locked(path);
  pthread_mutex_unlock(&s_key.lock);
  return rc;
}

/* The key into out (S_KEY_MAX); *len 0 when none is set. */
static herd_result_t s_key_get(unsigned char *out, size_t *len)
{
  pthread_mutex_lock(&s_key.lock);
  herd_result_t rc = HERD_OK;
  if (!s_key.loaded)
    rc = s_load_key_locked(herd_setting_string(HERD_S_CKPT_KEY_FILE));
  memcpy(out, s_key.key, s_key.len);
  *len = rc == HERD_OK ? s_key.len : 0;
  pthread_mutex_unlock(&s_key.lock);
  return rc;
}

static void s_hmac(const unsigned char *key, size_t key_len,
                   const unsigned char *header, unsigned char *out)
{
  unsigned int out_len = 32;
  HMAC(EVP_sha256(), key, (int)key_len, header, S_HMAC_SIGNED, out, &out_len);
}

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

/* herd-fnv4x64 and SHA-256 of bytes [CKPT_USERBLOCK, length) of fd. */
static herd_result_t s_hash_body(int fd, uint64_t length, const char *path,
                                 uint64_t *out, unsigned char *sha256)
{
  unsigned char *buf = malloc(S_READ_BYTES);
  EVP_MD_CTX *sha = EVP_MD_CTX_new();
  if (!buf || !sha || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL)) {
    free(buf);
    EVP_MD_CTX_free(sha);
    return herd_error_set(HERD_ENOMEM, "checkpoint '%s': no memory to hash",
                          path);
  }
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
    EVP_DigestUpdate(sha, buf, (size_t)n);
    off += (uint64_t)n;
  }
  free(buf);
  EVP_DigestFinal_ex(sha, sha256, NULL);
  EVP_MD_CTX_free(sha);
  *out = ckpt_hash_final(&hash);
  return rc;
}

static uint64_t s_header_hash(const unsigned char *header, size_t hashed)
{
  ckpt_hash_t hash;
  ckpt_hash_init(&hash);
  ckpt_hash_bytes(&hash, header, hashed);
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
  unsigned char key[S_KEY_MAX];
  size_t key_len = 0;
  struct stat st;
  uint64_t body = 0;
  HERD_CHECK(s_key_get(key, &key_len));
  int fd = open(path, O_RDWR | O_CLOEXEC);
  herd_result_t rc = HERD_OK;
  if (fd < 0) {
    rc = ckpt_errno_fail(errno, path, "open for seal");
    goto out_key;
  }
  if (fstat(fd, &st) != 0) {
    rc = ckpt_errno_fail(errno, path, "stat");
    goto out;
  }
  /* The disk writes the rest of the file while the body is hashed from the
   * page cache; the fsync below then mostly waits for what is in flight. */
  ckpt_start_writeback(fd);
  HERD_TRY(s_hash_body(fd, (uint64_t)st.st_size, path, &body,
                       header + S_SHA256_AT));
  memcpy(header, S_MAGIC, 8);
  s_put_le(header + 8, S_SEAL_VERSION, 4);
  s_put_le(header + 12, CKPT_USERBLOCK, 4);
  s_put_le(header + 16, (uint64_t)st.st_size, 8);
  s_put_le(header + 24, body, 8);
  s_put_le(header + S_FLAGS_AT, key_len ? S_FLAG_HMAC : 0, 4);
  if (key_len)
    s_hmac(key, key_len, header, header + S_HMAC_AT);
  s_put_le(header + S_V2_HASHED, s_header_hash(header, S_V2_HASHED), 8);
  HERD_TRY(s_write_all(fd, header, sizeof header, path));
  ckpt_fault_point("sealed");
  if (fsync(fd) != 0)
    rc = ckpt_errno_fail(errno, path, "fsync");
out:
  if (close(fd) != 0 && rc == HERD_OK)
    rc = ckpt_errno_fail(errno, path, "close");
out_key:
  OPENSSL_cleanse(key, sizeof key);
  return rc;
}

static herd_result_t s_bad(const char *path, const char *what)
{
  return herd_error_set(HERD_ECHECKSUM, "checkpoint '%s': whole-file seal: %s",
                        path, what);
}

/* The header's own checks (magic, version, hash, length, padding); *v2:
 * whether it carries the SHA-256 and the HMAC fields. */
static herd_result_t s_check_header(const unsigned char *h, uint64_t size,
                                    const char *path, int *v2)
{
  if (memcmp(h, S_MAGIC, 8) != 0)
    return s_bad(path, "no seal (not a herd v2 checkpoint, or damaged)");
  uint64_t version = s_get_le(h + 8, 4);
  if ((version != 1 && version != 2) || s_get_le(h + 12, 4) != CKPT_USERBLOCK)
    return s_bad(path, "unknown seal version");
  *v2 = version == 2;
  size_t hashed = *v2 ? S_V2_HASHED : S_V1_HASHED;
  if (s_get_le(h + hashed, 8) != s_header_hash(h, hashed))
    return s_bad(path, "header checksum mismatch");
  if (s_get_le(h + 16, 8) != size)
    return s_bad(path, "file length differs from the sealed length "
                       "(truncated or extended)");
  if (*v2 && (s_get_le(h + S_FLAGS_AT, 4) & ~S_FLAG_HMAC))
    return s_bad(path, "unknown seal flags");
  for (size_t i = hashed + 8; i < CKPT_USERBLOCK; i++)
    if (h[i] != 0)
      return s_bad(path, "user block padding is not zero");
  return HERD_OK;
}

/* With a checkpoint key set, the file must carry an HMAC made with it. */
static herd_result_t s_check_hmac(const unsigned char *h, int v2,
                                  const char *path)
{
  unsigned char key[S_KEY_MAX], mac[32];
  size_t key_len = 0;
  HERD_CHECK(s_key_get(key, &key_len));
  herd_result_t rc = HERD_OK;
  if (!key_len)
    return HERD_OK;
  if (!v2 || !(s_get_le(h + S_FLAGS_AT, 4) & S_FLAG_HMAC)) {
    rc = herd_error_set(HERD_EAUTH,
                        "checkpoint '%s' is not signed, but a checkpoint key "
                        "is set (HERD_CKPT_KEY_FILE): refused", path);
  } else {
    s_hmac(key, key_len, h, mac);
    if (CRYPTO_memcmp(mac, h + S_HMAC_AT, sizeof mac) != 0)
      rc = herd_error_set(HERD_EAUTH,
                          "checkpoint '%s' was tampered with: its signature "
                          "(HMAC-SHA256) does not match the checkpoint key "
                          "(changed by someone without the key, or signed "
                          "with another key): refused", path);
  }
  OPENSSL_cleanse(key, sizeof key);
  return rc;
}

herd_result_t ckpt_seal_check(const char *path)
{
  unsigned char header[CKPT_USERBLOCK], sha256[32];
  struct stat st;
  uint64_t body = 0;
  int v2 = 0;
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
  HERD_TRY(s_check_header(header, (uint64_t)st.st_size, path, &v2));
  HERD_TRY(s_hash_body(fd, (uint64_t)st.st_size, path, &body, sha256));
  if (body != s_get_le(header + 24, 8) ||
      (v2 && memcmp(sha256, header + S_SHA256_AT, sizeof sha256) != 0))
    rc = s_bad(path, "content bytes changed");
  else
    rc = s_check_hmac(header, v2, path);
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
