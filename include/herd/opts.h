/* Table-driven options.
 *
 * A command's options are a herd_opt_t table. herd's own commands name a
 * setting of the registry (herd/settings.h) in each entry (HERD_OPT), so a
 * setting's flag, environment variable, default, range and help are
 * declared once for every command that takes it; a command may show it
 * under a flag or default of its own (HERD_OPT_AS: `herd coord --port`).
 * The benchmarks spell out their few options inline instead. Parsing
 * applies default, then environment, then command line; --help text is
 * generated from the same table. Strings point into argv/environ/the table
 * (not copied): they live as long as the process.
 */
#ifndef HERD_OPTS_H
#define HERD_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "herd/result.h"
#include "herd/settings.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  const char *name;          /* long flag without dashes: "epochs" */
  char short_name;           /* 'n', or 0 */
  const char *env;           /* "HERD_EPOCHS", or NULL */
  herd_opt_type_t type;
  const char *default_value; /* as text; NULL = no default (field zeroed) */
  double min, max;           /* numeric range, inclusive */
  const char *choices;       /* for HERD_OPT_CHOICE */
  size_t offset;             /* offsetof(config struct, field) */
  const char *help;
  /* The registry's setting: every field above that is unset (NULL or 0)
   * comes from it. NULL: the entry spells everything out. */
  const herd_setting_t *setting;
} herd_opt_t;

/* A default_value meaning "no default here", whatever the registry says. */
extern const char herd_opt_no_default[];
#define HERD_OPT_NO_DEFAULT herd_opt_no_default

/* The registry's setting `id` into `type`'s field `field`. */
#define HERD_OPT(id, type, field)                                             \
  {.offset = offsetof(type, field), .setting = &herd_settings_g[HERD_S_##id]}
/* The same, shown by one command under its own flag (short flag, or 0) and
 * default (NULL: the registry's; HERD_OPT_NO_DEFAULT: none at all). */
#define HERD_OPT_AS(id, type, field, flag, short_flag, dflt)                  \
  {.name = flag, .short_name = short_flag, .default_value = dflt,             \
   .offset = offsetof(type, field), .setting = &herd_settings_g[HERD_S_##id]}

/* Parses options from argv[1..] into `config`. Stops at the first
 * positional argument or after "--"; *first_positional gets its index
 * (argc if none). "-h"/"--help" returns HERD_EINTR so the caller can print
 * help and exit 0. Errors set herd_error_detail() ("--epochs: not a number").
 */
herd_result_t herd_opts_parse(const herd_opt_t *table, size_t count,
                              void *config, int argc, char **argv,
                              int *first_positional);

/* Prints "usage" then one line per option with env var and default. */
void herd_opts_help(FILE *out, const char *usage, const herd_opt_t *table,
                    size_t count);

/* herd_opts_parse for a program's main(). Returns -1 when the program goes
 * on; 0 after printing --help; 2 after printing "PROG: error: <detail>" for
 * a bad option, or for any positional argument when first_positional is
 * NULL (a program that takes none). */
int herd_opts_main(const char *prog, const char *usage, const herd_opt_t *table,
                   size_t count, void *config, int argc, char **argv,
                   int *first_positional);

#ifdef __cplusplus
}
#endif
#endif
