/* `herd settings [--to-workers]`: the settings registry (herd/settings.h)
 * as a table: each setting's environment variable, flag, default, who
 * reads it and what it does. --to-workers: only the variables `herd run`
 * hands to its workers under every launcher, one per line (what the tests
 * check arrives). */
#include <stdio.h>
#include <string.h>

#include "cmds.h"

static const char s_usage[] =
    "usage: herd settings [--to-workers]\n\n"
    "Every setting herd reads: environment variable, flag, default, the\n"
    "processes that read it (run, coord, client = herd status/top, data,\n"
    "train = herd-train, lib = libherd in any training program; 'workers':\n"
    "herd run passes it on to its workers), and what it does.\n"
    "--to-workers prints only the variables herd run passes on.";

/* "run,coord,train" from a readers mask. */
static void s_readers(unsigned readers, char *out, size_t cap)
{
  static const struct {
    unsigned bit;
    const char *name;
  } names[] = {{HERD_READ_RUN, "run"},     {HERD_READ_COORD, "coord"},
               {HERD_READ_CLIENT, "client"}, {HERD_READ_DATA, "data"},
               {HERD_READ_TRAIN, "train"}, {HERD_READ_LIB, "lib"},
               {HERD_TO_WORKERS, "workers"}};
  size_t used = 0;
  out[0] = '\0';
  if ((readers & HERD_READ_ANY) == HERD_READ_ANY) {
    used = (size_t)snprintf(out, cap, "all");
    readers &= ~(unsigned)HERD_READ_ANY;
  }
  for (size_t i = 0; i < sizeof names / sizeof *names && used < cap; i++)
    if (readers & names[i].bit)
      used += (size_t)snprintf(out + used, cap - used, "%s%s",
                               used ? "," : "", names[i].name);
}

int herd_cmd_settings(int argc, char **argv)
{
  int to_workers = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      puts(s_usage);
      return 0;
    }
    if (strcmp(argv[i], "--to-workers") != 0) {
      fprintf(stderr, "herd settings: error: unknown argument '%s' (see "
                      "--help)\n", argv[i]);
      return HERD_EXIT_USAGE;
    }
    to_workers = 1;
  }
  for (int id = 0; id < HERD_S_COUNT; id++) {
    const herd_setting_t *s = &herd_settings_g[id];
    if (to_workers) {
      if (s->readers & HERD_TO_WORKERS)
        puts(s->env);
      continue;
    }
    char flag[64], readers[96];
    snprintf(flag, sizeof flag, "%s%s", s->flag ? "--" : "",
             s->flag ? s->flag : "-");
    s_readers(s->readers, readers, sizeof readers);
    printf("%-28s %-24s %-14s %-24s %s\n", s->env ? s->env : "-", flag,
           s->default_value ? s->default_value : "-", readers, s->help);
  }
  return 0;
}
