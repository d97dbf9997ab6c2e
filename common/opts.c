/* Table-driven option parsing.
 *
 * Each command declares its tunables once (herd/opts.h); this file applies
 * defaults, then HERD_* environment variables, then flags, checking types
 * and ranges the same way for all three sources, and renders --help from
 * the same table so documentation cannot drift from behaviour.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "herd/opts.h"

static herd_result_t s_bad(const herd_opt_t *opt, const char *source,
                           const char *value, const char *why)
{
  return herd_error_set(HERD_EINVAL, "--%s%s%s: '%s' %s", opt->name,
                        source ? " from " : "", source ? source : "", value,
                        why);
}

static int s_choice_ok(const char *choices, const char *value)
{
  size_t len = strlen(value);
  for (const char *p = choices; p && *p;) {
    const char *bar = strchr(p, '|');
    size_t item = bar ? (size_t)(bar - p) : strlen(p);
    if (item == len && strncmp(p, value, len) == 0)
      return 1;
    p = bar ? bar + 1 : NULL;
  }
  return 0;
}

static herd_result_t s_set_number(const herd_opt_t *opt, void *field,
                                  const char *value, const char *source)
{
  char *end = NULL;
  errno = 0;
  double number = strtod(value, &end);
  if (errno || end == value || *end != '\0' || isnan(number))
    return s_bad(opt, source, value, "is not a number");
  if (number < opt->min || number > opt->max) {
    herd_error_set(HERD_EINVAL, "--%s: %s is out of range [%g, %g]",
                   opt->name, value, opt->min, opt->max);
    return HERD_EINVAL;
  }
  if (opt->type == HERD_OPT_DOUBLE) {
    *(double *)field = number;
    return HERD_OK;
  }
  if (number != floor(number))
    return s_bad(opt, source, value, "is not a whole number");
  *(int64_t *)field = (int64_t)number;
  return HERD_OK;
}

static herd_result_t s_set_flag(const herd_opt_t *opt, int *field,
                                const char *value, const char *source)
{
  if (!value || !strcmp(value, "1") || !strcasecmp(value, "true") ||
      !strcasecmp(value, "yes")) {
    *field = 1;
    return HERD_OK;
  }
  if (!strcmp(value, "0") || !strcasecmp(value, "false") ||
      !strcasecmp(value, "no")) {
    *field = 0;
    return HERD_OK;
  }
  return s_bad(opt, source, value, "is not 0/1/true/false");
}

static herd_result_t s_set(const herd_opt_t *opt, void *config,
                           const char *value, const char *source)
{
  void *field = (char *)config + opt->offset;
  switch (opt->type) {
  case HERD_OPT_INT:
  case HERD_OPT_DOUBLE:
    return s_set_number(opt, field, value, source);
  case HERD_OPT_CHOICE:
    if (!s_choice_ok(opt->choices, value)) {
      herd_error_set(HERD_EINVAL, "--%s: '%s' is not one of %s", opt->name,
                     value, opt->choices);
      return HERD_EINVAL;
    }
    /* fall through */
  case HERD_OPT_STRING:
    *(const char **)field = value;
    return HERD_OK;
  case HERD_OPT_FLAG:
    return s_set_flag(opt, (int *)field, value, source);
  }
  return HERD_EINVAL;
}

static herd_result_t s_apply_defaults_and_env(const herd_opt_t *table,
                                              size_t count, void *config)
{
  for (size_t i = 0; i < count; i++) {
    const herd_opt_t *opt = &table[i];
    if (opt->default_value)
      HERD_CHECK(s_set(opt, config, opt->default_value, "default"));
    const char *env = opt->env ? getenv(opt->env) : NULL;
    if (env && *env)
      HERD_CHECK(s_set(opt, config, env, opt->env));
  }
  return HERD_OK;
}

static const herd_opt_t *s_find_long(const herd_opt_t *table, size_t count,
                                     const char *name, size_t len)
{
  for (size_t i = 0; i < count; i++)
    if (strlen(table[i].name) == len && !strncmp(table[i].name, name, len))
      return &table[i];
  return NULL;
}

static const herd_opt_t *s_find_short(const herd_opt_t *table, size_t count,
                                      char name)
{
  for (size_t i = 0; i < count; i++)
    if (table[i].short_name && table[i].short_name == name)
      return &table[i];
  return NULL;
}

/* Parses argv[*index] (and maybe its value in argv[*index + 1]). */
static herd_result_t s_parse_one(const herd_opt_t *table, size_t count,
                                 void *config, int argc, char **argv,
                                 int *index)
{
  const char *arg = argv[*index];
  const char *inline_value = NULL;
  const herd_opt_t *opt;
  if (arg[1] == '-') {
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    inline_value = eq ? eq + 1 : NULL;
    opt = s_find_long(table, count, name, len);
  } else {
    opt = arg[2] == '\0' ? s_find_short(table, count, arg[1]) : NULL;
  }
  if (!opt)
    return herd_error_set(HERD_EINVAL, "unknown option '%s' (see --help)", arg);
  if (opt->type == HERD_OPT_FLAG)
    return s_set(opt, config, inline_value, NULL);
  if (!inline_value) {
    if (*index + 1 >= argc)
      return herd_error_set(HERD_EINVAL, "--%s needs a value", opt->name);
    inline_value = argv[++*index];
  }
  return s_set(opt, config, inline_value, NULL);
}

const char herd_opt_no_default[] = "";

/* The table with each entry's registry fields filled in. */
static herd_opt_t *s_resolve(const herd_opt_t *table, size_t count)
{
  herd_opt_t *out = calloc(count ? count : 1, sizeof *out);
  for (size_t i = 0; out && i < count; i++) {
    herd_opt_t o = table[i];
    const herd_setting_t *s = o.setting;
    if (s) {
      o.name = o.name ? o.name : s->flag;
      o.short_name = o.short_name ? o.short_name : s->short_flag;
      o.env = s->env;
      o.type = s->type;
      o.default_value = o.default_value == herd_opt_no_default ? NULL
                        : o.default_value                  ? o.default_value
                                                           : s->default_value;
      o.min = s->min;
      o.max = s->max;
      o.choices = s->choices;
      o.help = s->help;
    }
    out[i] = o;
  }
  return out;
}

static herd_result_t s_parse(const herd_opt_t *table, size_t count,
                             void *config, int argc, char **argv,
                             int *first_positional)
{
  HERD_CHECK(s_apply_defaults_and_env(table, count, config));
  int i = 1;
  for (; i < argc; i++) {
    const char *arg = argv[i];
    if (!strcmp(arg, "--")) {
      i++;
      break;
    }
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help"))
      return HERD_EINTR;
    if (arg[0] != '-' || arg[1] == '\0')
      break;
    HERD_CHECK(s_parse_one(table, count, config, argc, argv, &i));
  }
  if (first_positional)
    *first_positional = i;
  return HERD_OK;
}

herd_result_t herd_opts_parse(const herd_opt_t *table, size_t count,
                              void *config, int argc, char **argv,
                              int *first_positional)
{
  herd_opt_t *resolved = s_resolve(table, count);
  if (!resolved)
    return HERD_ENOMEM;
  herd_result_t rc =
      s_parse(resolved, count, config, argc, argv, first_positional);
  free(resolved);
  return rc;
}

int herd_opts_main(const char *prog, const char *usage, const herd_opt_t *table,
                   size_t count, void *config, int argc, char **argv,
                   int *first_positional)
{
  int first = argc;
  herd_result_t rc = herd_opts_parse(table, count, config, argc, argv, &first);
  if (rc == HERD_EINTR) {
    herd_opts_help(stdout, usage, table, count);
    return 0;
  }
  if (rc == HERD_OK && !first_positional && first < argc)
    rc = herd_error_set(HERD_EINVAL, "unexpected argument '%s'", argv[first]);
  if (rc != HERD_OK) {
    fprintf(stderr, "%s: error: %s\n", prog, herd_error_detail());
    return 2;
  }
  if (first_positional)
    *first_positional = first;
  return -1;
}

void herd_opts_help(FILE *out, const char *usage, const herd_opt_t *given,
                    size_t count)
{
  herd_opt_t *table = s_resolve(given, count);
  if (!table)
    return;
  fprintf(out, "%s\n\nOptions:\n", usage);
  for (size_t i = 0; i < count; i++) {
    const herd_opt_t *opt = &table[i];
    char flag[64];
    const char *meta = opt->type == HERD_OPT_FLAG     ? ""
                       : opt->type == HERD_OPT_CHOICE ? " CHOICE"
                       : opt->type == HERD_OPT_STRING ? " TEXT"
                                                      : " N";
    if (opt->short_name)
      snprintf(flag, sizeof flag, "-%c, --%s%s", opt->short_name, opt->name,
               meta);
    else
      snprintf(flag, sizeof flag, "    --%s%s", opt->name, meta);
    fprintf(out, "  %-26s %s", flag, opt->help);
    if (opt->type == HERD_OPT_CHOICE)
      fprintf(out, " (%s)", opt->choices);
    if (opt->default_value)
      fprintf(out, " [default: %s]", opt->default_value);
    if (opt->env)
      fprintf(out, " [env: %s]", opt->env);
    fputc('\n', out);
  }
  fprintf(out, "  %-26s %s\n", "-h, --help", "show this help and exit");
  free(table);
}
