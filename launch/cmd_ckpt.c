/* `herd ckpt ls|verify|inspect|prune`: what can I resume from?
 * Thin front end over the public checkpoint API (herd/ckpt.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cmds.h"

static const char s_usage[] =
    "usage: herd ckpt ls DIR            list checkpoints (step, time, size, "
    "world size, verified)\n"
    "       herd ckpt verify FILE|DIR   full integrity check; exit 0 only if "
    "all pass\n"
    "       herd ckpt inspect FILE      metadata and tensor list of one "
    "checkpoint\n"
    "       herd ckpt prune DIR --keep N  delete all but the newest N\n\n"
    "ls, verify and inspect take --key-file FILE (or HERD_CKPT_KEY_FILE): the\n"
    "checkpoint key; a checkpoint not signed with it fails as tampered.";

static int s_is_ckpt_name(const char *name)
{
  size_t len = strlen(name);
  return len > 8 && !strncmp(name, "ckpt-", 5) && !strcmp(name + len - 3, ".h5");
}

static int s_cmp_names(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted list of committed checkpoint file names in dir; caller frees. */
static char **s_list(const char *dir, size_t *count)
{
  *count = 0;
  DIR *d = opendir(dir);
  if (!d)
    return NULL;
  char **names = NULL;
  size_t cap = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (!s_is_ckpt_name(e->d_name))
      continue;
    if (*count == cap) {
      cap = cap ? cap * 2 : 16;
      char **grown = realloc(names, cap * sizeof *names);
      if (!grown)
        break;
      names = grown;
    }
    names[(*count)++] = strdup(e->d_name);
  }
  closedir(d);
  if (names)
    qsort(names, *count, sizeof *names, s_cmp_names);
  return names;
}

static void s_free_list(char **names, size_t count)
{
  for (size_t i = 0; i < count; i++)
    free(names[i]);
  free(names);
}

static int s_ls(const char *dir)
{
  size_t count = 0;
  char **names = s_list(dir, &count);
  if (!names && count == 0) {
    struct stat st;
    if (stat(dir, &st) != 0) {
      fprintf(stderr, "herd ckpt ls: error: cannot open '%s'\n", dir);
      return HERD_EXIT_FAILED;
    }
  }
  printf("%-22s %10s %-20s %10s %6s %s\n", "file", "step", "saved", "bytes",
         "world", "verified");
  for (size_t i = 0; i < count; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    herd_ckpt_meta_t meta;
    struct stat st = {0};
    stat(path, &st);
    herd_result_t meta_rc = herd_ckpt_read_meta(path, &meta);
    herd_result_t verify_rc = herd_ckpt_verify(path);
    char when[32] = "?";
    if (meta_rc == HERD_OK) {
      time_t t = (time_t)meta.unix_time;
      strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
    }
    printf("%-22s %10lld %-20s %10lld %6d %s\n", names[i],
           meta_rc == HERD_OK ? (long long)meta.step : -1LL, when,
           (long long)st.st_size, meta_rc == HERD_OK ? meta.world_size : 0,
           verify_rc == HERD_OK ? "yes" : herd_strerror(verify_rc));
  }
  char latest[4096];
  if (herd_ckpt_find_latest(dir, latest, sizeof latest) == HERD_OK)
    printf("resume would use: %s\n", latest);
  else
    printf("resume would use: nothing (no checkpoint verifies)\n");
  s_free_list(names, count);
  return HERD_EXIT_OK;
}

static int s_verify_one(const char *path)
{
  herd_result_t rc = herd_ckpt_verify(path);
  if (rc == HERD_OK)
    printf("%s: ok\n", path);
  else
    printf("%s: FAILED: %s\n", path, herd_error_detail());
  return rc == HERD_OK ? 0 : 1;
}

static int s_verify(const char *target)
{
  struct stat st;
  if (stat(target, &st) != 0) {
    fprintf(stderr, "herd ckpt verify: error: cannot open '%s'\n", target);
    return HERD_EXIT_FAILED;
  }
  if (!S_ISDIR(st.st_mode))
    return s_verify_one(target) ? HERD_EXIT_FAILED : HERD_EXIT_OK;
  size_t count = 0;
  char **names = s_list(target, &count);
  int failures = 0;
  for (size_t i = 0; i < count; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", target, names[i]);
    failures += s_verify_one(path);
  }
  s_free_list(names, count);
  if (count == 0)
    fprintf(stderr, "herd ckpt verify: error: no checkpoints in '%s'\n", target);
  return failures || count == 0 ? HERD_EXIT_FAILED : HERD_EXIT_OK;
}

static const char *s_dtype_name(herd_dtype_t dtype)
{
  switch (dtype) {
  case HERD_DTYPE_F32: return "f32";
  case HERD_DTYPE_F64: return "f64";
  case HERD_DTYPE_I32: return "i32";
  case HERD_DTYPE_I64: return "i64";
  case HERD_DTYPE_F16: return "f16";
  case HERD_DTYPE_BF16: return "bf16";
  case HERD_DTYPE_U8: return "u8";
  default: return "?";
  }
}

static void s_print_tensors(const char *path)
{
  herd_ckpt_tensor_info_t tensors[HERD_CKPT_MAX_TENSORS];
  size_t count = 0;
  herd_result_t rc =
      herd_ckpt_list_tensors(path, tensors, HERD_CKPT_MAX_TENSORS, &count);
  if (rc != HERD_OK) {
    printf("tensors:       unreadable: %s\n", herd_error_detail());
    return;
  }
  printf("tensors:       %zu\n", count);
  for (size_t i = 0; i < count && i < HERD_CKPT_MAX_TENSORS; i++)
    printf("  %-24s %-5s %12zu\n", tensors[i].name,
           s_dtype_name(tensors[i].dtype), tensors[i].count);
}

static int s_inspect(const char *path)
{
  herd_ckpt_meta_t *meta = malloc(sizeof *meta);
  if (!meta)
    return herd_cli_fail("ckpt inspect", HERD_ENOMEM);
  herd_result_t rc = herd_ckpt_read_meta(path, meta);
  if (rc != HERD_OK) {
    free(meta);
    return herd_cli_fail("ckpt inspect", rc);
  }
  printf("file:          %s\nstep:          %lld\nepoch:         %lld\n"
         "step_in_epoch: %lld\nworld_size:    %d\nvirtual_shards: %d\n"
         "saved_unix:    %.3f\nrng_state:     %llu %llu %llu %llu\n"
         "lr_schedule:   %s\nconfig:        %s\n",
         path, (long long)meta->step, (long long)meta->epoch,
         (long long)meta->step_in_epoch, meta->world_size,
         meta->virtual_shards, meta->unix_time,
         (unsigned long long)meta->rng_state[0],
         (unsigned long long)meta->rng_state[1],
         (unsigned long long)meta->rng_state[2],
         (unsigned long long)meta->rng_state[3], meta->lr_schedule_json,
         meta->config_json);
  free(meta);
  s_print_tensors(path);
  return s_verify_one(path) ? HERD_EXIT_FAILED : HERD_EXIT_OK;
}

static int s_prune(int argc, char **argv)
{
  if (argc != 5 || strcmp(argv[3], "--keep") != 0) {
    fprintf(stderr, "%s\n", s_usage);
    return HERD_EXIT_USAGE;
  }
  char *end = NULL;
  long keep = strtol(argv[4], &end, 10);
  if (*end || keep < 1 || keep > 1000000) {
    fprintf(stderr, "herd ckpt prune: error: --keep must be >= 1\n");
    return HERD_EXIT_USAGE;
  }
  herd_result_t rc = herd_ckpt_prune(argv[2], (int)keep);
  return rc == HERD_OK ? HERD_EXIT_OK : herd_cli_fail("ckpt prune", rc);
}

int herd_cmd_ckpt(int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      puts(s_usage); /* every action's help is in it */
      return HERD_EXIT_OK;
    }
  if (argc >= 3 && !strcmp(argv[1], "prune"))
    return s_prune(argc, argv);
  /* ACTION TARGET [--key-file FILE]: the key signed checkpoints must carry
   * (default: HERD_CKPT_KEY_FILE's, read by the checkpoint module). */
  if (argc == 5 && !strcmp(argv[3], "--key-file")) {
    herd_result_t rc = herd_ckpt_set_key_file(argv[4]);
    if (rc != HERD_OK) {
      fprintf(stderr, "herd ckpt: error: %s\n", herd_error_detail());
      return HERD_EXIT_USAGE;
    }
    argc = 3;
  }
  if (argc != 3) {
    fprintf(stderr, "%s\n", s_usage);
    return HERD_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "ls"))
    return s_ls(argv[2]);
  if (!strcmp(argv[1], "verify"))
    return s_verify(argv[2]);
  if (!strcmp(argv[1], "inspect"))
    return s_inspect(argv[2]);
  fprintf(stderr, "herd ckpt: error: unknown action '%s'\n%s\n", argv[1], s_usage);
  return HERD_EXIT_USAGE;
}
