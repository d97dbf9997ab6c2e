/* `herd keygen --out FILE`: a CURVE keypair for `herd coord`: the secret
 * key into FILE (mode 600; what --key-file / HERD_COORD_KEY_FILE name, a
 * Kubernetes Secret's file), the public key on stdout as HERD_COORD_KEY=...
 * (what the workers need; not a secret).
 * `herd keygen --public FILE`: the public key of FILE's secret key (a
 * batch script that restarts with the key it made before). */
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "cmds.h"
#include "herd/fs.h"

static const char s_usage[] =
    "usage: herd keygen --out FILE\n"
    "       herd keygen --public FILE\n\n"
    "Makes a CURVE keypair for herd coord: writes the secret key to FILE\n"
    "(mode 600; give it to herd coord as --key-file or HERD_COORD_KEY_FILE)\n"
    "and prints the public key as HERD_COORD_KEY=... for the workers.\n"
    "--public prints the public key of the secret key in FILE.";

static int s_public(const char *path)
{
  char secret[64], public_key[41];
  size_t len = 0;
  herd_result_t rc = herd_read_secret_file(path, secret, sizeof secret, &len);
  if (rc == HERD_OK && (len != 40 || zmq_curve_public(public_key, secret) != 0))
    rc = herd_error_set(HERD_EINVAL, "'%s' holds no CURVE secret key (40 "
                        "characters of Z85)", path);
  memset(secret, 0, sizeof secret);
  if (rc != HERD_OK)
    return herd_cli_fail("keygen", rc);
  printf("HERD_COORD_KEY=%s\n", public_key);
  return HERD_EXIT_OK;
}

int herd_cmd_keygen(int argc, char **argv)
{
  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    puts(s_usage);
    return HERD_EXIT_OK;
  }
  if (argc == 3 && !strcmp(argv[1], "--public"))
    return s_public(argv[2]);
  if (argc != 3 || strcmp(argv[1], "--out") != 0) {
    fprintf(stderr, "%s\n", s_usage);
    return HERD_EXIT_USAGE;
  }
  char public_key[41], secret_key[41];
  herd_result_t rc = herd_curve_keypair(public_key, secret_key);
  if (rc == HERD_OK)
    rc = herd_write_secret_atomic(argv[2], secret_key, 40);
  memset(secret_key, 0, sizeof secret_key);
  if (rc != HERD_OK)
    return herd_cli_fail("keygen", rc);
  printf("HERD_COORD_KEY=%s\n", public_key);
  return HERD_EXIT_OK;
}
