/* Table-driven options.
 *
 * Every tunable of a command is declared once in a herd_opt_t table: its
 * flag, its HERD_* environment variable, default, range and help. Parsing
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

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  HERD_OPT_INT,    /* int64_t field, checked against [min, max] */
  HERD_OPT_DOUBLE, /* double field, checked against [min, max] */
  HERD_OPT_STRING, /* const char * field */
  HERD_OPT_CHOICE, /* const char * field, one of `choices` ("a|b|c") */
  HERD_OPT_FLAG    /* int field, 1 when given (env: 1/0/true/false) */
} herd_opt_type_t;

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
} herd_opt_t;

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
