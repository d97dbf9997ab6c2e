/* Rank discovery from the launcher's environment (herd/env.h).
 *
 * One table lists the launchers in the order they are tried. The first whose
 * rank variable is set gives the rank; a later source fills a field the
 * winner lacks only when it names the same rank (srun --mpi=pmix sets
 * PMIX_RANK but no world size; Slurm's SLURM_NTASKS beside it is the same
 * launch, while a batch step's SLURM_PROCID=0 under an inner mpirun is not).
 *
 * PMIX_RANK is read as it was when the process started: a singleton MPI
 * (MPI_Init without a launcher, as in a Kubernetes pod) exports PMIX_RANK=0
 * into its own environment, which would otherwise outrank the pod's index.
 *
 * The Slurm host-list parser is bounded in every dimension (input length,
 * bracket groups, ranges, digits, host count) because the list comes from
 * the environment, which a user controls.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herd/env.h"
#include "herd/log.h"

#define S_LOG "env"
#define S_MAX_RANK 10000000L
#define S_MAX_LIST 65536
#define S_MAX_GROUPS 4
#define S_MAX_RANGES 64
#define S_MAX_DIGITS 9
#define S_MAX_HOSTS 1000000UL

typedef struct {
  const char *name;
  const char *rank, *world_size, *local_rank, *node_id; /* NULL: none */
} s_source_t;

static const s_source_t s_sources[] = {
    {"openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
     "OMPI_COMM_WORLD_LOCAL_RANK", NULL},
    {"pmix", "PMIX_RANK", NULL, NULL, NULL},
    {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NODEID"},
    {"k8s", "JOB_COMPLETION_INDEX", "HERD_WORLD_SIZE", NULL, NULL},
    {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "GROUP_RANK"},
    {"herd", "HERD_RANK", "HERD_WORLD_SIZE", "HERD_LOCAL_RANK", NULL},
};
#define S_N_SOURCES (sizeof s_sources / sizeof *s_sources)

/* PMIX_RANK as the launcher gave it, captured before main() runs. */
static char s_pmix_rank_at_start[32];
static int s_pmix_rank_was_set;

__attribute__((constructor)) static void s_capture_start_env(void)
{
  const char *value = getenv("PMIX_RANK");
  if (!value)
    return;
  s_pmix_rank_was_set = 1;
  if (strlen(value) < sizeof s_pmix_rank_at_start)
    snprintf(s_pmix_rank_at_start, sizeof s_pmix_rank_at_start, "%s", value);
  else
    snprintf(s_pmix_rank_at_start, sizeof s_pmix_rank_at_start, "too-long");
}

static const char *s_getenv(const char *name)
{
  if (!strcmp(name, "PMIX_RANK"))
    return s_pmix_rank_was_set ? s_pmix_rank_at_start : NULL;
  return getenv(name);
}

/* ---- Slurm host lists ----------------------------------------------------
 */

typedef struct {
  unsigned long lo[S_MAX_RANGES], hi[S_MAX_RANGES];
  int width[S_MAX_RANGES];
  int n_ranges;
  unsigned long count;
} s_group_t;

typedef struct {
  char text[S_MAX_GROUPS + 1][HERD_ENV_MAX_HOST]; /* before/between/after */
  s_group_t groups[S_MAX_GROUPS];
  int n_groups;
} s_item_t;

static herd_result_t s_bad_list(const char *why)
{
  return herd_error_set(HERD_EINVAL, "bad Slurm node list: %s", why);
}

/* Reads up to S_MAX_DIGITS digits at *p; advances *p. */
static herd_result_t s_parse_number(const char **p, const char *end,
                                    unsigned long *value, int *width)
{
  const char *start = *p;
  *value = 0;
  while (*p < end && **p >= '0' && **p <= '9' && *p - start < S_MAX_DIGITS + 1)
    *value = *value * 10 + (unsigned long)(*(*p)++ - '0');
  *width = (int)(*p - start);
  if (*width == 0 || *width > S_MAX_DIGITS)
    return s_bad_list("expected a number of 1 to 9 digits in brackets");
  return HERD_OK;
}

/* Parses "lo[-hi],..." between brackets, [p, end). */
static herd_result_t s_parse_group(const char *p, const char *end,
                                   s_group_t *group)
{
  group->n_ranges = 0;
  group->count = 0;
  while (p < end) {
    if (group->n_ranges == S_MAX_RANGES)
      return s_bad_list("more than 64 ranges in one bracket");
    int i = group->n_ranges++, hi_width = 0;
    HERD_CHECK(s_parse_number(&p, end, &group->lo[i], &group->width[i]));
    group->hi[i] = group->lo[i];
    if (p < end && *p == '-') {
      p++;
      HERD_CHECK(s_parse_number(&p, end, &group->hi[i], &hi_width));
    }
    if (group->hi[i] < group->lo[i])
      return s_bad_list("a range ends below its start");
    group->count += group->hi[i] - group->lo[i] + 1;
    if (group->count > S_MAX_HOSTS)
      return s_bad_list("more than a million hosts");
    if (p < end && *p++ != ',')
      return s_bad_list("expected ',' or '-' in brackets");
    if (p == end && p[-1] == ',')
      return s_bad_list("empty range in brackets");
  }
  return group->n_ranges ? HERD_OK : s_bad_list("empty brackets");
}

/* Splits one name ("rack[1-2]-n[01-04]") into text and bracket groups. */
static herd_result_t s_parse_item(const char *p, const char *end, s_item_t *item)
{
  size_t text_len = 0;
  item->n_groups = 0;
  item->text[0][0] = '\0';
  while (p < end) {
    if (*p == ']')
      return s_bad_list("']' without '['");
    if (*p != '[') {
      if (text_len + 1 >= HERD_ENV_MAX_HOST)
        return s_bad_list("host name too long");
      item->text[item->n_groups][text_len++] = *p++;
      item->text[item->n_groups][text_len] = '\0';
      continue;
    }
    const char *close = memchr(p, ']', (size_t)(end - p));
    if (!close)
      return s_bad_list("'[' without ']'");
    if (item->n_groups == S_MAX_GROUPS)
      return s_bad_list("more than 4 bracket groups in one name");
    HERD_CHECK(s_parse_group(p + 1, close, &item->groups[item->n_groups]));
    item->text[++item->n_groups][0] = '\0';
    text_len = 0;
    p = close + 1;
  }
  if (item->n_groups == 0 && item->text[0][0] == '\0')
    return s_bad_list("empty host name");
  return HERD_OK;
}

static unsigned long s_item_count(const s_item_t *item)
{
  unsigned long count = 1;
  for (int g = 0; g < item->n_groups; g++) {
    count *= item->groups[g].count;
    if (count > S_MAX_HOSTS)
      return S_MAX_HOSTS + 1;
  }
  return count;
}

/* The index-th number of a group, zero-padded like its range's start. */
static int s_group_print(const s_group_t *group, unsigned long index,
                         char *out, size_t cap)
{
  for (int i = 0; i < group->n_ranges; i++) {
    unsigned long size = group->hi[i] - group->lo[i] + 1;
    if (index < size)
      return snprintf(out, cap, "%0*lu", group->width[i], group->lo[i] + index);
    index -= size;
  }
  return -1;
}

/* The index-th host of an item; the last bracket group varies fastest. */
static herd_result_t s_item_host(const s_item_t *item, unsigned long index,
                                 char *out, size_t cap)
{
  unsigned long digits[S_MAX_GROUPS];
  for (int g = item->n_groups - 1; g >= 0; g--) {
    digits[g] = index % item->groups[g].count;
    index /= item->groups[g].count;
  }
  size_t used = 0;
  for (int g = 0; g <= item->n_groups; g++) {
    int n = snprintf(out + used, cap - used, "%s", item->text[g]);
    if (n < 0 || (size_t)n >= cap - used)
      return herd_error_set(HERD_ETOOBIG, "host name longer than %zu", cap);
    used += (size_t)n;
    if (g == item->n_groups)
      break;
    n = s_group_print(&item->groups[g], digits[g], out + used, cap - used);
    if (n < 0 || (size_t)n >= cap - used)
      return herd_error_set(HERD_ETOOBIG, "host name longer than %zu", cap);
    used += (size_t)n;
  }
  return HERD_OK;
}

/* Walks the top-level comma-separated names, validating all of them. With
 * out == NULL it only counts; else it writes the host at `index`. */
static herd_result_t s_walk(const char *list, size_t index, size_t *count,
                            char *out, size_t cap)
{
  if (!list)
    return s_bad_list("missing");
  size_t len = strnlen(list, S_MAX_LIST + 1), total = 0;
  int found = 0;
  if (len == 0 || len > S_MAX_LIST)
    return s_bad_list(len ? "longer than 64 KiB" : "empty");
  s_item_t *item = malloc(sizeof *item);
  if (!item)
    return HERD_ENOMEM;
  herd_result_t rc = HERD_OK;
  const char *p = list, *end = list + len;
  while (rc == HERD_OK && p <= end) {
    const char *stop = p;
    int depth = 0;
    while (stop < end && (depth || *stop != ','))
      depth += (*stop == '[') - (*stop == ']'), stop++;
    rc = s_parse_item(p, stop, item);
    unsigned long n = rc == HERD_OK ? s_item_count(item) : 0;
    if (rc == HERD_OK && total + n > S_MAX_HOSTS)
      rc = s_bad_list("more than a million hosts");
    if (rc == HERD_OK && out && !found && index < total + n) {
      rc = s_item_host(item, index - total, out, cap);
      found = 1; /* go on: a list is valid whole or not at all */
    }
    total += n;
    p = stop + 1;
  }
  free(item);
  if (rc == HERD_OK && count)
    *count = total;
  if (rc == HERD_OK && out && !found)
    rc = herd_error_set(HERD_ENOENT, "node list has %zu hosts, no host %zu",
                        total, index);
  return rc;
}

herd_result_t herd_env_nodelist_count(const char *list, size_t *count_out)
{
  if (!count_out)
    return HERD_EINVAL;
  return s_walk(list, 0, count_out, NULL, 0);
}

herd_result_t herd_env_nodelist_host(const char *list, size_t index,
                                     char *out, size_t cap)
{
  if (!out || cap == 0)
    return HERD_EINVAL;
  out[0] = '\0';
  return s_walk(list, index, NULL, out, cap);
}

/* ---- ranks -----------------------------------------------------------------
 */

/* Reads a non-negative integer variable; -1 when unset. */
static herd_result_t s_read_int(const char *name, long min, long *out)
{
  *out = -1;
  const char *text = name ? s_getenv(name) : NULL;
  if (!text)
    return HERD_OK;
  char *end = NULL;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno || end == text || *end || value < min || value > S_MAX_RANK)
    return herd_error_set(HERD_EINVAL, "%s='%s' is not a number from %ld to "
                                       "%ld", name, text, min, S_MAX_RANK);
  *out = value;
  return HERD_OK;
}

/* Fills fields still unknown from `source`, which names rank `rank`. */
static herd_result_t s_fill_from(const s_source_t *source,
                                 herd_launch_env_t *out)
{
  long world = -1, local = -1, node = -1;
  HERD_CHECK(s_read_int(source->world_size, 1, &world));
  HERD_CHECK(s_read_int(source->local_rank, 0, &local));
  HERD_CHECK(s_read_int(source->node_id, 0, &node));
  if (out->world_size < 0 && world > 0) {
    out->world_size = (int)world;
    out->world_source = source->name;
  }
  if (out->local_rank < 0)
    out->local_rank = (int)local;
  if (out->node_id < 0)
    out->node_id = (int)node;
  return HERD_OK;
}

static herd_result_t s_discover_ranks(herd_launch_env_t *out)
{
  for (size_t i = 0; i < S_N_SOURCES; i++) {
    long rank = -1;
    HERD_CHECK(s_read_int(s_sources[i].rank, 0, &rank));
    if (rank < 0 || (out->rank >= 0 && rank != out->rank))
      continue;
    if (out->rank < 0) {
      out->rank = (int)rank;
      out->source = s_sources[i].name;
    }
    HERD_CHECK(s_fill_from(&s_sources[i], out));
  }
  if (out->rank >= 0 && out->world_size > 0 && out->rank >= out->world_size)
    return herd_error_set(HERD_EINVAL, "rank %d from %s is not below the "
                                       "world size %d from %s", out->rank,
                          out->source, out->world_size, out->world_source);
  return HERD_OK;
}

/* ---- coordinator address ---------------------------------------------------
 */

static herd_result_t s_coord_port(long *port)
{
  const char *text = getenv("HERD_COORD_PORT");
  *port = HERD_ENV_DEFAULT_PORT;
  if (!text)
    return HERD_OK;
  char *end = NULL;
  errno = 0;
  *port = strtol(text, &end, 10);
  if (errno || end == text || *end || *port < 1 || *port > 65535)
    return herd_error_set(HERD_EINVAL, "HERD_COORD_PORT='%s' is not a port "
                                       "from 1 to 65535", text);
  return HERD_OK;
}

/* `<job>-0.<service>`: job from HERD_K8S_JOB_NAME or the pod's hostname
 * (`<job>-<index>` in an Indexed Job with a subdomain). */
static herd_result_t s_k8s_host(const char *service, char *out, size_t cap)
{
  char job[HERD_ENV_MAX_HOST];
  const char *name = getenv("HERD_K8S_JOB_NAME");
  if (name && name[0]) {
    snprintf(job, sizeof job, "%s", name);
  } else {
    const char *index = getenv("JOB_COMPLETION_INDEX");
    if (gethostname(job, sizeof job - 1) != 0)
      return herd_error_set(HERD_ESYS, "gethostname failed");
    job[sizeof job - 1] = '\0';
    size_t len = strlen(job), index_len = strlen(index);
    if (len <= index_len + 1 || job[len - index_len - 1] != '-' ||
        strcmp(job + len - index_len, index) != 0)
      return herd_error_set(HERD_EINVAL, "hostname '%s' is not <job>-%s: set "
                                         "HERD_K8S_JOB_NAME", job, index);
    job[len - index_len - 1] = '\0';
  }
  int n = snprintf(out, cap, "%s-0.%s", job, service);
  return n > 0 && (size_t)n < cap ? HERD_OK
                                  : herd_error_set(HERD_ETOOBIG, "k8s host "
                                                                 "name too long");
}

static herd_result_t s_discover_coord(herd_launch_env_t *out)
{
  const char *given = getenv("HERD_COORD");
  if (given && given[0]) {
    if (strlen(given) >= sizeof out->coord)
      return herd_error_set(HERD_EINVAL, "HERD_COORD is too long");
    snprintf(out->coord, sizeof out->coord, "%s", given);
    out->coord_source = "HERD_COORD";
    return HERD_OK;
  }
  char host[HERD_ENV_MAX_HOST];
  long port = 0;
  const char *nodes = getenv("SLURM_JOB_NODELIST");
  const char *service = getenv("HERD_K8S_SERVICE");
  if (!nodes || !nodes[0])
    nodes = getenv("SLURM_NODELIST");
  if (nodes && nodes[0]) {
    HERD_CHECK(herd_env_nodelist_host(nodes, 0, host, sizeof host));
    out->coord_source = "slurm";
  } else if (getenv("JOB_COMPLETION_INDEX") && service && service[0]) {
    HERD_CHECK(s_k8s_host(service, host, sizeof host));
    out->coord_source = "k8s";
  } else {
    return HERD_OK;
  }
  HERD_CHECK(s_coord_port(&port));
  snprintf(out->coord, sizeof out->coord, "tcp://%s:%ld", host, port);
  return HERD_OK;
}

herd_result_t herd_env_discover(herd_launch_env_t *out)
{
  if (!out)
    return HERD_EINVAL;
  *out = (herd_launch_env_t){.rank = -1, .world_size = -1, .local_rank = -1,
                             .node_id = -1, .source = "none",
                             .world_source = "none", .coord_source = "none"};
  HERD_CHECK(s_discover_ranks(out));
  HERD_CHECK(s_discover_coord(out));
  HERD_LOG(HERD_LOG_INFO, S_LOG,
           "rank %d from %s, world size %d from %s, local rank %d, node %d; "
           "coordinator %s from %s (sources tried: openmpi, pmix, slurm, "
           "k8s, torchrun, herd)",
           out->rank, out->source, out->world_size, out->world_source,
           out->local_rank, out->node_id, out->coord[0] ? out->coord : "-",
           out->coord_source);
  return HERD_OK;
}
