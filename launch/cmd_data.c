/* `herd data import fashion-mnist [--src DIR] [--out FILE]`: converts the
 * Debian dataset-fashion-mnist IDX files into one HDF5 file. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cmds.h"

typedef struct {
  const char *src;
  const char *out;
} s_data_opts_t;

static const herd_opt_t s_table[] = {
    {"src", 0, "HERD_DATA_SRC", HERD_OPT_STRING, HERD_FASHION_MNIST_DIR, 0, 0,
     NULL, offsetof(s_data_opts_t, src),
     "folder with the IDX .gz files (Debian's dataset-fashion-mnist)"},
    {"out", 'o', "HERD_DATA", HERD_OPT_STRING, "data/fashion-mnist.h5", 0, 0,
     NULL, offsetof(s_data_opts_t, out), "HDF5 file to write"},
};

static const char s_usage[] =
    "usage: herd data import fashion-mnist [--src DIR] [--out FILE]\n\n"
    "Converts Fashion-MNIST (IDX, gzip) into one HDF5 file with /train and\n"
    "/test groups (images uint8 [N,28,28], labels uint8 [N]). Checks magic\n"
    "numbers, shapes and counts; on error nothing is left at --out.";

static int s_is_help(const char *arg)
{
  return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

int herd_cmd_data(int argc, char **argv)
{
  if ((argc >= 2 && s_is_help(argv[1])) || (argc >= 3 && s_is_help(argv[2]))) {
    puts(s_usage);
    return HERD_EXIT_OK;
  }
  if (argc < 3 || strcmp(argv[1], "import") != 0 ||
      (strcmp(argv[2], "fashion-mnist") != 0 && !s_is_help(argv[2]))) {
    fprintf(stderr, "herd data: error: expected 'import fashion-mnist' (the "
                    "one dataset supported)\n%s\n", s_usage);
    return HERD_EXIT_USAGE;
  }
  s_data_opts_t opts = {0};
  int first = 0;
  /* argv[2] plays the program name, so options follow the dataset name. */
  int code = herd_cli_parse(s_usage, s_table, sizeof s_table / sizeof *s_table,
                            &opts, argc - 2, argv + 2, &first);
  if (code >= 0)
    return code;
  if (first != argc - 2) {
    fprintf(stderr, "herd data import: error: unexpected '%s'\n",
            argv[first + 2]);
    return HERD_EXIT_USAGE;
  }
  printf("herd data: importing fashion-mnist from %s ...\n", opts.src);
  fflush(stdout);
  herd_result_t rc = herd_cli_mkdirs_parent(opts.out);
  if (rc == HERD_OK)
    rc = herd_data_import_fashion_mnist(opts.src, opts.out);
  if (rc != HERD_OK)
    return herd_cli_fail("data import", rc);
  printf("herd data: wrote %s\n", opts.out);
  return HERD_EXIT_OK;
}
