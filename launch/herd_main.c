/* `herd`: the command line. Dispatches to subcommands; each lives in its
 * own cmd_*.c file and uses only herd's public API. Only main() exits. */
#include <stdio.h>
#include <string.h>

#include "cmds.h"

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} s_commands[] = {
    {"run", herd_cmd_run, "launch N workers with an embedded coordinator"},
    {"coord", herd_cmd_coord, "run a standalone coordinator"},
    {"status", herd_cmd_status, "membership, generation, step of a running job"},
    {"top", herd_cmd_top, "live view of a running job (throughput, ranks)"},
    {"data", herd_cmd_data, "import datasets (herd data import fashion-mnist)"},
    {"ckpt", herd_cmd_ckpt, "list, verify, inspect and prune checkpoints"},
    {"keygen", herd_cmd_keygen, "a CURVE keypair for herd coord (--key-file)"},
    {"report", herd_cmd_report, "an HTML report of a run (charts, failures, summary)"},
    {"settings", herd_cmd_settings, "every setting: variable, flag, default, who reads it"},
};

static void s_usage(FILE *out)
{
  fprintf(out, "usage: herd COMMAND [OPTIONS]\n\n"
               "herd " HERD_VERSION " - distributed training coordinator\n\n"
               "Commands:\n");
  for (size_t i = 0; i < sizeof s_commands / sizeof *s_commands; i++)
    fprintf(out, "  %-8s %s\n", s_commands[i].name, s_commands[i].summary);
  fprintf(out, "\nRun 'herd COMMAND --help' for a command's options.\n");
}

int herd_cli_parse(const char *usage, const herd_opt_t *table, size_t count,
                   void *config, int argc, char **argv, int *first_positional)
{
  char prog[128];
  snprintf(prog, sizeof prog, "herd %s", argv[0]);
  return herd_opts_main(prog, usage, table, count, config, argc, argv,
                        first_positional);
}

int herd_cli_fail(const char *cmd, herd_result_t rc)
{
  const char *detail = herd_error_detail();
  fprintf(stderr, "herd %s: error: %s\n", cmd,
          detail[0] ? detail : herd_strerror(rc));
  return rc == HERD_EINVAL ? HERD_EXIT_USAGE : HERD_EXIT_FAILED;
}

int main(int argc, char **argv)
{
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    s_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? HERD_EXIT_USAGE : HERD_EXIT_OK;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("herd %s (protocol %d)\n", HERD_VERSION, HERD_PROTOCOL_VERSION);
    return HERD_EXIT_OK;
  }
  for (size_t i = 0; i < sizeof s_commands / sizeof *s_commands; i++)
    if (!strcmp(argv[1], s_commands[i].name))
      return s_commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "herd: error: unknown command '%s'\n\n", argv[1]);
  s_usage(stderr);
  return HERD_EXIT_USAGE;
}
