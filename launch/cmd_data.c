/* `herd data import fashion-mnist [--src DIR] [--out FILE]`: converts the
 * Debian dataset-fashion-mnist IDX files into one HDF5 file.
 * `herd data inspect FILE`: what a dataset file holds (splits, counts, image
 * shape, label range), read through the same loader herd-train uses, so
 * what it accepts and rejects is what training will. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cmds.h"

typedef struct {
  const char *src;
  const char *out;
} s_data_opts_t;

static const herd_opt_t s_table[] = {
    HERD_OPT(DATA_SRC, s_data_opts_t, src),
    HERD_OPT_AS(DATA, s_data_opts_t, out, "out", 'o', NULL),
};

static const char s_usage[] =
    "usage: herd data import fashion-mnist [--src DIR] [--out FILE]\n"
    "       herd data inspect FILE\n\n"
    "import converts Fashion-MNIST (IDX, gzip) into one HDF5 file with\n"
    "/train and /test groups (images uint8 [N,28,28], labels uint8 [N]).\n"
    "Checks magic numbers, shapes and counts; on error nothing is left at\n"
    "--out. inspect prints a dataset file's splits, sample counts, image\n"
    "shape and label range, or why herd-train cannot load it.";

static int s_is_help(const char *arg)
{
  return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

/* argv: "import" "fashion-mnist" [options]. */
static int s_import(int argc, char **argv)
{
  s_data_opts_t opts = {0};
  int first = 0;
  /* argv[1] plays the program name, so options follow the dataset name. */
  int code = herd_cli_parse(s_usage, s_table, sizeof s_table / sizeof *s_table,
                            &opts, argc - 1, argv + 1, &first);
  if (code >= 0)
    return code;
  if (first != argc - 1) {
    fprintf(stderr, "herd data import: error: unexpected '%s'\n",
            argv[first + 1]);
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

static void s_print_split(const char *name, const herd_data_split_t *split)
{
  int low = 255, high = 0, seen[256] = {0}, classes = 0;
  for (size_t i = 0; i < split->count; i++) {
    int label = split->labels[i];
    low = label < low ? label : low;
    high = label > high ? label : high;
    classes += !seen[label]++;
  }
  printf("  %-5s %zu samples, images %dx%d (%d inputs), labels %d..%d "
         "(%d classes present)\n",
         name, split->count, split->rows, split->cols,
         split->rows * split->cols, low, high, classes);
}

/* argv: "inspect" FILE. */
static int s_inspect(int argc, char **argv)
{
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "herd data inspect: error: expected one FILE\n%s\n",
            s_usage);
    return HERD_EXIT_USAGE;
  }
  herd_dataset_t *dataset = NULL;
  herd_result_t rc = herd_dataset_load(argv[1], &dataset);
  if (rc != HERD_OK)
    return herd_cli_fail("data inspect", rc);
  printf("herd data: %s\n", argv[1]);
  s_print_split("train", &dataset->train);
  s_print_split("test", &dataset->test);
  herd_dataset_destroy(&dataset);
  return HERD_EXIT_OK;
}

int herd_cmd_data(int argc, char **argv)
{
  if ((argc >= 2 && s_is_help(argv[1])) || (argc >= 3 && s_is_help(argv[2]))) {
    puts(s_usage);
    return HERD_EXIT_OK;
  }
  if (argc >= 2 && !strcmp(argv[1], "inspect"))
    return s_inspect(argc - 1, argv + 1);
  if (argc < 3 || strcmp(argv[1], "import") != 0 ||
      strcmp(argv[2], "fashion-mnist") != 0) {
    fprintf(stderr,
            "herd data: error: expected 'import fashion-mnist' (the "
            "one dataset supported) or 'inspect FILE'\n%s\n",
            s_usage);
    return HERD_EXIT_USAGE;
  }
  return s_import(argc - 1, argv + 1);
}
