/* The attacker of tests/security/security.sh: someone who can write a
 * checkpoint file but does not hold the checkpoint key.
 *
 *   ckpt_tamper IN OUT unsigned   OUT = IN with a few parameters changed,
 *                                 written by the public API without a key
 *                                 (every checksum and the seal valid)
 *   ckpt_tamper IN OUT forged     the same, and the signature fields (HMAC
 *                                 and flag) of IN's seal copied into OUT's,
 *                                 the header hash recomputed: a file that
 *                                 claims to be signed
 *
 * IN is read with the key from HERD_CKPT_KEY_FILE (the reader's own check);
 * OUT is written without one. Exit 0 when OUT was written. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt_internal.h"
#include "herd/ckpt.h"

#define S_HMAC_FIELDS_AT 64 /* flags and HMAC: bytes [64, 100) (FORMAT.md) */
#define S_HMAC_FIELDS_END 100

static int s_fail(const char *what)
{
  fprintf(stderr, "ckpt_tamper: %s: %s\n", what, herd_error_detail());
  return 1;
}

/* Copies the signature fields of `from`'s seal into `to`'s, and fixes the
 * header hash so that only the HMAC can tell. */
static int s_forge(const char *from, const char *to)
{
  unsigned char signed_header[CKPT_USERBLOCK], header[CKPT_USERBLOCK];
  int in = open(from, O_RDONLY), out = open(to, O_RDWR);
  if (in < 0 || out < 0 ||
      pread(in, signed_header, sizeof signed_header, 0) != CKPT_USERBLOCK ||
      pread(out, header, sizeof header, 0) != CKPT_USERBLOCK)
    return 1;
  memcpy(header + S_HMAC_FIELDS_AT, signed_header + S_HMAC_FIELDS_AT,
         S_HMAC_FIELDS_END - S_HMAC_FIELDS_AT);
  ckpt_hash_t hash;
  ckpt_hash_init(&hash);
  ckpt_hash_bytes(&hash, header, S_HMAC_FIELDS_END);
  uint64_t h = ckpt_hash_final(&hash);
  for (int i = 0; i < 8; i++)
    header[S_HMAC_FIELDS_END + i] = (unsigned char)(h >> (8 * i));
  int ok = pwrite(out, header, sizeof header, 0) == CKPT_USERBLOCK &&
           fsync(out) == 0;
  close(in);
  close(out);
  return !ok;
}

int main(int argc, char **argv)
{
  if (argc != 4 || (strcmp(argv[3], "unsigned") && strcmp(argv[3], "forged"))) {
    fprintf(stderr, "usage: ckpt_tamper IN OUT unsigned|forged\n");
    return 2;
  }
  herd_ckpt_tensor_info_t infos[HERD_CKPT_MAX_TENSORS];
  herd_tensor_t tensors[HERD_CKPT_MAX_TENSORS];
  size_t count = 0;
  herd_ckpt_meta_t meta;
  if (herd_ckpt_list_tensors(argv[1], infos, HERD_CKPT_MAX_TENSORS, &count) !=
      HERD_OK)
    return s_fail("list");
  for (size_t i = 0; i < count; i++) {
    tensors[i] = (herd_tensor_t){infos[i].name, infos[i].dtype,
                                 calloc(infos[i].count + 1,
                                        herd_dtype_size(infos[i].dtype)),
                                 infos[i].count};
    if (!tensors[i].data)
      return 1;
  }
  if (herd_ckpt_load(argv[1], &meta, tensors, count) != HERD_OK)
    return s_fail("load (with the key)");
  for (size_t i = 0; i < count; i++)
    if (!strcmp(tensors[i].name, "params"))
      for (size_t k = 0; k < 4 && k < tensors[i].count; k++)
        ((float *)tensors[i].data)[k] += 0.5f; /* the attacker's change */
  if (herd_ckpt_set_key_file(NULL) != HERD_OK)
    return s_fail("drop the key");
  /* A scratch folder beside OUT, so the final rename stays on one disk. */
  char dir[PATH_MAX], path[PATH_MAX];
  snprintf(dir, sizeof dir, "%s.tamper-XXXXXX", argv[2]);
  if (!mkdtemp(dir))
    return 1;
  if (herd_ckpt_save(dir, &meta, tensors, count, path, sizeof path) != HERD_OK)
    return s_fail("save");
  if (!strcmp(argv[3], "forged") && s_forge(argv[1], path) != 0)
    return s_fail("forge");
  char cmd_latest[PATH_MAX + 16];
  snprintf(cmd_latest, sizeof cmd_latest, "%s/latest", dir);
  if (rename(path, argv[2]) != 0)
    return 1;
  unlink(cmd_latest);
  rmdir(dir);
  for (size_t i = 0; i < count; i++)
    free(tensors[i].data);
  printf("ckpt_tamper: wrote %s (%s, step %lld)\n", argv[2], argv[3],
         (long long)meta.step);
  return 0;
}
