/* The hosts of a `herd run --hostfile/-H` job: validation, the list mpirun
 * gets, where the coordinator listens, and which hosts are still there.
 *
 * The user's -H and --hostfile are checked before anything starts, so a
 * typo is a clear exit-2 error rather than an mpirun message, and a name
 * that could read as an option ("-x") is refused: the entries end up as
 * argv words, never in a shell. They are also kept as a list of (host,
 * slots), because a multi-host job outlives hosts: when Open MPI ends the
 * job because a node died (its daemon is gone), `herd run` asks each host
 * whether it is still reachable, through the same remote shell mpirun uses
 * (plm_rsh_agent, ssh by default), and relaunches on those that answer.
 *
 * The coordinator listens on the address of this host that routes to the
 * first remote host (or --iface's), never 0.0.0.0; loopback when every
 * worker runs here.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "herd/clock.h"
#include "herd/net.h"
#include "launch_internal.h"

extern char **environ;

#define S_MAX_HOSTFILE_LINES 100000
#define S_MAX_HOST_ENTRIES 4096
#define S_MAX_SLOTS 1000000L
#define S_PROBE_TIMEOUT_S 15.0
#define S_MAX_AGENT_WORDS 32

/* A host name or address: letters, digits, '.', '-', '_'; never an option. */
static int s_valid_host(const char *host, size_t len)
{
  if (len == 0 || len > 255 || host[0] == '-')
    return 0;
  for (size_t i = 0; i < len; i++)
    if (!isalnum((unsigned char)host[i]) && !strchr(".-_", host[i]))
      return 0;
  return 1;
}

/* 1..S_MAX_SLOTS in decimal; *value gets it. */
static int s_valid_count(const char *text, size_t len, long *value)
{
  *value = 0;
  if (len == 0 || len > 7)
    return 0;
  for (size_t i = 0; i < len; i++) {
    if (!isdigit((unsigned char)text[i]))
      return 0;
    *value = *value * 10 + (text[i] - '0');
  }
  return *value >= 1 && *value <= S_MAX_SLOTS;
}

/* Records one entry (slots 0: not given) and the first remote host: the
 * coordinator must listen where that host reaches it. */
static herd_result_t s_add_host(herd_run_opts_t *opts, const char *host,
                                size_t len, long slots)
{
  if (opts->n_host_entries >= S_MAX_HOST_ENTRIES)
    return herd_error_set(HERD_EINVAL, "more than %d hosts",
                          S_MAX_HOST_ENTRIES);
  if (!opts->host_entries &&
      !(opts->host_entries = calloc(S_MAX_HOST_ENTRIES,
                                    sizeof *opts->host_entries)))
    return HERD_ENOMEM;
  herd_launch_host_t *entry = &opts->host_entries[opts->n_host_entries++];
  snprintf(entry->name, sizeof entry->name, "%.*s", (int)len, host);
  entry->slots = (int)slots;
  entry->local = herd_net_is_local(entry->name);
  if (!entry->local && !opts->remote_host[0])
    snprintf(opts->remote_host, sizeof opts->remote_host, "%s", entry->name);
  return HERD_OK;
}

/* -H host[:N],host[:N],... */
static herd_result_t s_read_hosts_option(herd_run_opts_t *opts)
{
  const char *p = opts->hosts;
  for (;;) {
    size_t len = strcspn(p, ",");
    const char *colon = memchr(p, ':', len);
    size_t host_len = colon ? (size_t)(colon - p) : len;
    long slots = 0;
    if (!s_valid_host(p, host_len) ||
        (colon && !s_valid_count(colon + 1, len - host_len - 1, &slots)))
      return herd_error_set(HERD_EINVAL, "-H '%s': expected host[:N],... "
                                         "(entry '%.*s')", opts->hosts,
                            (int)len, p);
    HERD_CHECK(s_add_host(opts, p, host_len, slots));
    if (!p[len])
      return HERD_OK;
    p += len + 1;
  }
}

/* One hostfile line: `host [slots=N] [max_slots=N]`, `#` comments. */
static int s_valid_hostfile_line(char *line, char **host, long *slots)
{
  char *hash = strchr(line, '#'), *save = NULL;
  if (hash)
    *hash = '\0';
  char *word = strtok_r(line, " \t\r\n", &save);
  *host = word;
  *slots = 0;
  if (!word)
    return 1;
  if (!s_valid_host(word, strlen(word)))
    return 0;
  while ((word = strtok_r(NULL, " \t\r\n", &save))) {
    char *eq = strchr(word, '=');
    long value = 0;
    if (!eq || !s_valid_count(eq + 1, strlen(eq + 1), &value))
      return 0;
    size_t key = (size_t)(eq - word);
    if (key == 5 && !strncmp(word, "slots", 5))
      *slots = value;
    else if (!(key == 9 && (!strncmp(word, "max_slots", 9) ||
                            !strncmp(word, "max-slots", 9))))
      return 0;
  }
  return 1;
}

static herd_result_t s_read_hostfile(herd_run_opts_t *opts)
{
  const char *path = opts->hostfile;
  if (path[0] == '-')
    return herd_error_set(HERD_EINVAL, "--hostfile '%s': write ./%s for a "
                                       "file whose name starts with '-'",
                          path, path);
  FILE *file = fopen(path, "r");
  if (!file)
    return herd_error_set(HERD_EINVAL, "--hostfile '%s': %s", path,
                          strerror(errno));
  char line[1024];
  int number = 0, hosts = 0, ok = 1;
  herd_result_t rc = HERD_OK;
  while (ok && rc == HERD_OK && number < S_MAX_HOSTFILE_LINES &&
         fgets(line, sizeof line, file)) {
    number++;
    char *host = NULL;
    long slots = 0;
    ok = (strchr(line, '\n') || feof(file)) &&
         s_valid_hostfile_line(line, &host, &slots);
    if (ok && host) {
      hosts++;
      rc = s_add_host(opts, host, strlen(host), slots);
    }
  }
  fclose(file);
  HERD_CHECK(rc);
  if (!ok)
    return herd_error_set(HERD_EINVAL, "--hostfile '%s' line %d: expected "
                                       "'host [slots=N] [max_slots=N]'",
                          path, number);
  if (hosts == 0)
    return herd_error_set(HERD_EINVAL, "--hostfile '%s' names no host", path);
  return HERD_OK;
}

herd_result_t herd_launch_read_hosts(herd_run_opts_t *opts)
{
  if (opts->hostfile)
    HERD_CHECK(s_read_hostfile(opts));
  if (opts->hosts)
    HERD_CHECK(s_read_hosts_option(opts));
  return HERD_OK;
}

void herd_launch_free_hosts(herd_run_opts_t *opts)
{
  free(opts->host_entries);
  opts->host_entries = NULL;
  opts->n_host_entries = 0;
}

herd_result_t herd_launch_find_coord_addr(herd_run_opts_t *opts)
{
  herd_result_t rc = HERD_OK;
  if (opts->iface || opts->remote_host[0])
    rc = herd_net_advertise_addr(opts->iface, opts->remote_host,
                                 opts->coord_addr, sizeof opts->coord_addr);
  else
    snprintf(opts->coord_addr, sizeof opts->coord_addr, "127.0.0.1");
  if (rc != HERD_OK) {
    char why[512];
    snprintf(why, sizeof why, "%s", herd_error_detail());
    return herd_error_set(HERD_EINVAL, "%s: %s (name the interface the "
                          "hosts share with --iface)",
                          opts->iface ? "--iface" : "the coordinator's "
                          "address", why);
  }
  if (herd_net_cidr_of(opts->coord_addr, opts->network,
                       sizeof opts->network) != HERD_OK)
    opts->network[0] = '\0';
  return HERD_OK;
}

/* ---- which hosts are still there -------------------------------------------
 */

/* The remote shell mpirun uses: plm_rsh_agent's first choice ("ssh : rsh"
 * means ssh, else rsh) and plm_rsh_args, split into words; ssh gets
 * BatchMode so a missing key fails instead of prompting. The words point
 * into `buf`. */
static int s_agent_argv(char *buf, size_t cap, char **words)
{
  const char *agent = getenv("OMPI_MCA_plm_rsh_agent");
  const char *args = getenv("OMPI_MCA_plm_rsh_args");
  snprintf(buf, cap, "%.*s %s", agent ? (int)strcspn(agent, ":") : 3,
           agent ? agent : "ssh", args ? args : "");
  int n = 0;
  char *save = NULL;
  for (char *w = strtok_r(buf, " \t", &save); w && n < S_MAX_AGENT_WORDS - 4;
       w = strtok_r(NULL, " \t", &save))
    words[n++] = w;
  const char *base = n ? strrchr(words[0], '/') : NULL;
  base = base ? base + 1 : n ? words[0] : "";
  if (!strcmp(base, "ssh")) {
    words[n++] = "-o";
    words[n++] = "BatchMode=yes";
  }
  return n;
}

static pid_t s_spawn_probe(char **argv)
{
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                   O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null",
                                   O_WRONLY, 0);
  pid_t pid = 0;
  if (posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ) != 0)
    pid = 0;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

/* Waits (bounded) for the probes; a probe that fails or hangs marks its
 * host gone. */
static void s_collect_probes(herd_run_opts_t *opts, pid_t *pids)
{
  double deadline = herd_mono_s() + S_PROBE_TIMEOUT_S;
  for (int i = 0; i < opts->n_host_entries; i++) {
    int status = 0;
    pid_t done = 0;
    while (pids[i] && (done = waitpid(pids[i], &status, WNOHANG)) == 0 &&
           herd_mono_s() < deadline)
      usleep(20 * 1000);
    if (pids[i] && done == 0) {
      kill(pids[i], SIGKILL);
      waitpid(pids[i], &status, 0);
    }
    if (!opts->host_entries[i].local &&
        (!pids[i] || done <= 0 || !WIFEXITED(status) || WEXITSTATUS(status)))
      opts->host_entries[i].gone = 1;
  }
}

int herd_launch_probe_hosts(herd_run_opts_t *opts)
{
  char buf[1024], *argv[S_MAX_AGENT_WORDS];
  int n = s_agent_argv(buf, sizeof buf, argv);
  pid_t *pids = calloc((size_t)opts->n_host_entries + 1, sizeof *pids);
  if (!pids || n == 0) {
    free(pids);
    return 0;
  }
  for (int i = 0; i < opts->n_host_entries; i++) {
    if (opts->host_entries[i].local || opts->host_entries[i].gone)
      continue;
    argv[n] = opts->host_entries[i].name; /* validated: never an option */
    argv[n + 1] = "true";
    argv[n + 2] = NULL;
    pids[i] = s_spawn_probe(argv);
  }
  s_collect_probes(opts, pids);
  free(pids);
  int gone = 0;
  for (int i = 0; i < opts->n_host_entries; i++)
    gone += opts->host_entries[i].gone;
  return gone;
}

/* -H for the hosts still there, and how many workers they take: -n scaled
 * by their share of the slots (an entry without slots counts one). */
herd_result_t herd_launch_remaining_hosts(herd_run_opts_t *opts, char *out,
                                          size_t cap, int64_t *nproc)
{
  long total = 0, left = 0;
  size_t used = 0;
  out[0] = '\0';
  for (int i = 0; i < opts->n_host_entries; i++) {
    const herd_launch_host_t *h = &opts->host_entries[i];
    long slots = h->slots ? h->slots : 1;
    total += slots;
    if (h->gone)
      continue;
    left += slots;
    int n = h->slots ? snprintf(out + used, cap - used, "%s%s:%d",
                                used ? "," : "", h->name, h->slots)
                     : snprintf(out + used, cap - used, "%s%s",
                                used ? "," : "", h->name);
    if (n < 0 || (size_t)n >= cap - used)
      return herd_error_set(HERD_ETOOBIG, "host list too long");
    used += (size_t)n;
  }
  if (left == 0)
    return herd_error_set(HERD_ENOENT, "no host is reachable");
  int64_t scaled = *nproc * left / total;
  *nproc = scaled > 0 ? scaled : 1;
  return HERD_OK;
}
