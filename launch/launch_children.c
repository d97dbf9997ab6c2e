/* Worker processes for `herd run`: the mpirun, srun and local back-ends.
 *
 * mpirun gets the options a single-host job needs (oversubscription on small
 * machines, shared-memory transport, ranks that yield while waiting, root
 * allowed in containers), `-x` for every HERD_* variable, and the user's
 * --hostfile / -H, validated first so a typo is a clear exit-2 error rather
 * than an mpirun message. srun gets `-n N --kill-on-bad-exit=0` (survivors of
 * a failed rank keep training on an elastic backend), `--export` of the
 * HERD_* variables and `--mpi=pmix` unless SLURM_MPI_TYPE says otherwise.
 * The local back-end fork/execs N copies with HERD_RANK/HERD_WORLD_SIZE set.
 *
 * No shell is ever involved: every argument goes to posix_spawn as argv, and
 * host names and files that could read as options ("-x") are refused.
 * Children run in their own process group so a terminal Ctrl-C reaches herd
 * run, which stops them on purpose (SIGTERM, then SIGKILL after a grace
 * period).
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmds.h"
#include "herd/net.h"
#include "launch_internal.h"

extern char **environ;

#define S_STOP_GRACE_S 10.0
#define S_MAX_ARGS 256
#define S_MAX_HOSTFILE_LINES 100000
#define S_MAX_HOST_ENTRIES 4096
#define S_MAX_SLOTS 1000000L

static const char *const s_exported[] = {
    "HERD_COORD", "HERD_TOKEN", "HERD_JOB_ID", "HERD_RUN_DIR",
    "HERD_CKPT_DIR", "HERD_CKPT_EVERY", "HERD_RESUME", "HERD_BACKEND",
    "HERD_IFACE", "HERD_LOG_LEVEL", "HERD_LOG_SUBSYS", "PATH"};

/* Finds `name` in PATH (or checks it when it has a '/'). */
static int s_find_program(const char *name, char *out, size_t cap)
{
  if (strchr(name, '/')) {
    snprintf(out, cap, "%s", name);
    return access(name, X_OK) == 0;
  }
  const char *path = getenv("PATH");
  for (const char *p = path ? path : ""; *p;) {
    const char *colon = strchr(p, ':');
    size_t len = colon ? (size_t)(colon - p) : strlen(p);
    snprintf(out, cap, "%.*s/%s", (int)len, p, name);
    if (len && access(out, X_OK) == 0)
      return 1;
    p = colon ? colon + 1 : p + len;
  }
  return 0;
}

/* ---- --hostfile and -H ------------------------------------------------------
 */

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

static int s_valid_count(const char *text, size_t len)
{
  long value = 0;
  if (len == 0 || len > 7)
    return 0;
  for (size_t i = 0; i < len; i++) {
    if (!isdigit((unsigned char)text[i]))
      return 0;
    value = value * 10 + (text[i] - '0');
  }
  return value >= 1 && value <= S_MAX_SLOTS;
}

/* Remembers the first host that is not this one: the coordinator must
 * listen where that host reaches it. */
static void s_note_host(herd_run_opts_t *opts, const char *host, size_t len)
{
  char name[256];
  if (opts->remote_host[0] || len >= sizeof name)
    return;
  snprintf(name, sizeof name, "%.*s", (int)len, host);
  if (!herd_net_is_local(name))
    snprintf(opts->remote_host, sizeof opts->remote_host, "%s", name);
}

/* -H host[:N],host[:N],... */
static herd_result_t s_check_hosts(herd_run_opts_t *opts)
{
  const char *hosts = opts->hosts;
  const char *p = hosts;
  for (int entries = 0; entries < S_MAX_HOST_ENTRIES; entries++) {
    size_t len = strcspn(p, ",");
    const char *colon = memchr(p, ':', len);
    size_t host_len = colon ? (size_t)(colon - p) : len;
    if (!s_valid_host(p, host_len) ||
        (colon && !s_valid_count(colon + 1, len - host_len - 1)))
      return herd_error_set(HERD_EINVAL, "-H '%s': expected host[:N],... "
                                         "(entry '%.*s')", hosts, (int)len, p);
    s_note_host(opts, p, host_len);
    if (!p[len])
      return HERD_OK;
    p += len + 1;
  }
  return herd_error_set(HERD_EINVAL, "-H: more than %d hosts",
                        S_MAX_HOST_ENTRIES);
}

/* One hostfile line: `host [slots=N] [max_slots=N]`, `#` comments. */
static int s_valid_hostfile_line(herd_run_opts_t *opts, char *line,
                                 int *has_host)
{
  char *hash = strchr(line, '#'), *save = NULL;
  if (hash)
    *hash = '\0';
  char *word = strtok_r(line, " \t\r\n", &save);
  *has_host = word != NULL;
  if (!word)
    return 1;
  if (!s_valid_host(word, strlen(word)))
    return 0;
  s_note_host(opts, word, strlen(word));
  while ((word = strtok_r(NULL, " \t\r\n", &save))) {
    char *eq = strchr(word, '=');
    if (!eq)
      return 0;
    size_t key = (size_t)(eq - word);
    if (!((key == 5 && !strncmp(word, "slots", 5)) ||
          (key == 9 && (!strncmp(word, "max_slots", 9) ||
                        !strncmp(word, "max-slots", 9)))) ||
        !s_valid_count(eq + 1, strlen(eq + 1)))
      return 0;
  }
  return 1;
}

static herd_result_t s_check_hostfile(herd_run_opts_t *opts)
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
  while (ok && number < S_MAX_HOSTFILE_LINES && fgets(line, sizeof line, file)) {
    number++;
    int has_host = 0;
    ok = strchr(line, '\n') || feof(file);
    ok = ok && s_valid_hostfile_line(opts, line, &has_host);
    hosts += has_host;
  }
  fclose(file);
  if (!ok)
    return herd_error_set(HERD_EINVAL, "--hostfile '%s' line %d: expected "
                                       "'host [slots=N] [max_slots=N]'",
                          path, number);
  if (hosts == 0)
    return herd_error_set(HERD_EINVAL, "--hostfile '%s' names no host", path);
  return HERD_OK;
}

/* ---- checks -----------------------------------------------------------------
 */

static herd_result_t s_check_launcher(herd_run_opts_t *opts)
{
  char path[4096];
  int hosts_given = opts->hostfile || opts->hosts;
  if (!opts->launcher)
    opts->launcher = hosts_given || s_find_program("mpirun", path, sizeof path)
                         ? "mpirun"
                         : "local";
  if (hosts_given && strcmp(opts->launcher, "mpirun"))
    return herd_error_set(HERD_EINVAL, "--hostfile and -H work with "
                                       "--launcher mpirun only");
  if (!strcmp(opts->launcher, "mpirun") &&
      !s_find_program("mpirun", path, sizeof path))
    return herd_error_set(HERD_EINVAL, "--launcher mpirun: mpirun not found "
                                       "in PATH (install openmpi-bin)");
  if (!strcmp(opts->launcher, "srun") &&
      !s_find_program("srun", path, sizeof path))
    return herd_error_set(HERD_EINVAL, "--launcher srun: srun not found "
                                       "in PATH (install slurm-client)");
  if (opts->hostfile)
    HERD_CHECK(s_check_hostfile(opts));
  if (opts->hosts)
    HERD_CHECK(s_check_hosts(opts));
  return HERD_OK;
}

/* Where the coordinator listens: --iface's address, else the local address
 * of the route to the first remote host; loopback when every worker runs
 * here. Never 0.0.0.0. */
static herd_result_t s_find_coord_addr(herd_run_opts_t *opts)
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

herd_result_t herd_launch_check(herd_run_opts_t *opts, const char *command)
{
  char path[4096];
  HERD_CHECK(s_check_launcher(opts));
  HERD_CHECK(s_find_coord_addr(opts));
  if (!s_find_program(command, path, sizeof path))
    return herd_error_set(HERD_EINVAL, "command '%s' not found%s", command,
                          strchr(command, '/') ? " or not executable"
                                               : " in PATH");
  if (herd_cli_mkdirs(opts->run_dir) != HERD_OK) {
    char why[512];
    snprintf(why, sizeof why, "%s", herd_error_detail());
    return herd_error_set(HERD_EINVAL, "bad run dir: %s", why);
  }
  if (access(opts->run_dir, W_OK) != 0)
    return herd_error_set(HERD_EINVAL, "run dir '%s' is not writable: %s",
                          opts->run_dir, strerror(errno));
  return HERD_OK;
}

/* ---- argv -------------------------------------------------------------------
 */

static int s_push(char **argv, int *argc, const char *arg)
{
  if (*argc >= S_MAX_ARGS - 1)
    return -1;
  argv[(*argc)++] = (char *)arg;
  argv[*argc] = NULL;
  return 0;
}

/* mpirun argv: options, hosts, -x for each HERD_* variable, the command. */
static herd_result_t s_mpirun_argv(const herd_run_opts_t *opts, char **command,
                                   char **argv, char *np, size_t np_cap)
{
  static const char *const base[] = {
      "mpirun", "--quiet", "--oversubscribe", "--bind-to", "none",
      "--mca", "btl_vader_single_copy_mechanism", "none",
      "--mca", "mpi_yield_when_idle", "1"};
  int argc = 0, bad = 0;
  for (size_t i = 0; i < sizeof base / sizeof *base; i++)
    bad |= s_push(argv, &argc, base[i]);
  /* Shared memory within a host, TCP between hosts, on the network the
   * coordinator was found on (a host's other interfaces, docker bridges
   * and the like, would otherwise be tried too). */
  int across_hosts = opts->remote_host[0] != '\0';
  bad |= s_push(argv, &argc, "--mca") | s_push(argv, &argc, "btl") |
         s_push(argv, &argc, across_hosts ? "self,vader,tcp" : "self,vader");
  if (across_hosts && opts->network[0])
    bad |= s_push(argv, &argc, "--mca") |
           s_push(argv, &argc, "btl_tcp_if_include") |
           s_push(argv, &argc, opts->network) | s_push(argv, &argc, "--mca") |
           s_push(argv, &argc, "oob_tcp_if_include") |
           s_push(argv, &argc, opts->network);
  if (!opts->hostfile && !opts->hosts) /* one host: keep to loopback */
    bad |= s_push(argv, &argc, "--mca") |
           s_push(argv, &argc, "oob_tcp_if_include") | s_push(argv, &argc, "lo");
  if (geteuid() == 0)
    bad |= s_push(argv, &argc, "--allow-run-as-root");
  if (herd_launch_elastic(opts)) {
    /* Elastic (gloo) ranks outlive a dead peer; by default mpirun would
     * tear the whole job down when one rank dies or exits non-zero. */
    bad |= s_push(argv, &argc, "--enable-recovery");
    bad |= s_push(argv, &argc, "--mca") |
           s_push(argv, &argc, "orte_abort_on_non_zero_status") |
           s_push(argv, &argc, "0");
  }
  if (opts->hostfile)
    bad |= s_push(argv, &argc, "--hostfile") | s_push(argv, &argc, opts->hostfile);
  if (opts->hosts)
    bad |= s_push(argv, &argc, "-H") | s_push(argv, &argc, opts->hosts);
  snprintf(np, np_cap, "%lld", (long long)opts->nproc);
  bad |= s_push(argv, &argc, "-np") | s_push(argv, &argc, np);
  for (size_t i = 0; i < sizeof s_exported / sizeof *s_exported; i++)
    if (getenv(s_exported[i]))
      bad |= s_push(argv, &argc, "-x") | s_push(argv, &argc, s_exported[i]);
  for (char **arg = command; *arg; arg++)
    bad |= s_push(argv, &argc, *arg);
  return bad ? herd_error_set(HERD_EINVAL, "too many arguments") : HERD_OK;
}

/* srun argv: -n N, survivors keep running, HERD_* exported, the command. */
static herd_result_t s_srun_argv(const herd_run_opts_t *opts, char **command,
                                 char **argv, char *np, size_t np_cap,
                                 char *export, size_t export_cap)
{
  int argc = 0, bad = 0;
  size_t used = (size_t)snprintf(export, export_cap, "--export=ALL");
  for (size_t i = 0; i < sizeof s_exported / sizeof *s_exported; i++)
    if (getenv(s_exported[i]) && used < export_cap)
      used += (size_t)snprintf(export + used, export_cap - used, ",%s",
                               s_exported[i]);
  snprintf(np, np_cap, "%lld", (long long)opts->nproc);
  bad |= s_push(argv, &argc, "srun") | s_push(argv, &argc, "-n") |
         s_push(argv, &argc, np) | s_push(argv, &argc, "--kill-on-bad-exit=0") |
         s_push(argv, &argc, export);
  if (!getenv("SLURM_MPI_TYPE")) /* srun reads it itself when set */
    bad |= s_push(argv, &argc, "--mpi=pmix");
  if (herd_launch_elastic(opts)) /* survivors keep their node allocation */
    bad |= s_push(argv, &argc, "--no-kill");
  for (char **arg = command; *arg; arg++)
    bad |= s_push(argv, &argc, *arg);
  if (used >= export_cap)
    bad = 1;
  return bad ? herd_error_set(HERD_EINVAL, "too many arguments") : HERD_OK;
}

static herd_result_t s_spawn(char **argv, pid_t group, pid_t *pid_out)
{
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, group);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  int err = posix_spawnp(pid_out, argv[0], NULL, &attr, argv, environ);
  posix_spawnattr_destroy(&attr);
  if (err)
    return herd_error_set(HERD_ESYS, "cannot start '%s': %s", argv[0],
                          strerror(err));
  return HERD_OK;
}

int herd_launch_elastic(const herd_run_opts_t *opts)
{
  const char *backend = opts->backend ? opts->backend : getenv("HERD_BACKEND");
  return backend && !strcmp(backend, "gloo");
}

/* Local worker `index` (rank hint) in the process group of the first. */
static herd_result_t s_spawn_local(herd_children_t *children, int index)
{
  char number[32];
  snprintf(number, sizeof number, "%d", children->count);
  setenv("HERD_WORLD_SIZE", number, 1);
  snprintf(number, sizeof number, "%d", index);
  setenv("HERD_RANK", number, 1);
  setenv("HERD_LOCAL_RANK", number, 1);
  pid_t group = index == 0 ? 0 : children->pids[0];
  if (group && kill(group, 0) != 0)
    group = 0; /* the group's first process is gone: start a new group */
  herd_result_t rc = s_spawn(children->command, group, &children->pids[index]);
  unsetenv("HERD_RANK");
  unsetenv("HERD_LOCAL_RANK");
  unsetenv("HERD_WORLD_SIZE");
  return rc;
}

static herd_result_t s_launch_local(const herd_run_opts_t *opts,
                                    char **command, herd_children_t *children)
{
  (void)opts;
  children->command = command;
  for (int rank = 0; rank < children->count; rank++)
    HERD_CHECK(s_spawn_local(children, rank));
  return HERD_OK;
}

herd_result_t herd_children_launch(const herd_run_opts_t *opts,
                                   char **command, herd_children_t *children)
{
  int local = !strcmp(opts->launcher, "local");
  children->count = local ? (int)opts->nproc : 1;
  children->via = !strcmp(opts->launcher, "srun") ? "srun"
                  : local                         ? "local"
                                                  : "mpirun";
  children->pids = calloc((size_t)children->count, sizeof *children->pids);
  if (!children->pids)
    return HERD_ENOMEM;
  children->tolerate_failures = herd_launch_elastic(opts);
  children->restarts_left = local && children->tolerate_failures
                                ? (int)opts->max_restarts
                                : 0;
  if (local) {
    herd_result_t rc = s_launch_local(opts, command, children);
    if (rc != HERD_OK)
      herd_children_stop(children, SIGKILL);
    return rc;
  }
  char *argv[S_MAX_ARGS], np[32], export[1024];
  children->via_mpirun = 1;
  if (!strcmp(children->via, "srun")) {
    HERD_CHECK(s_srun_argv(opts, command, argv, np, sizeof np, export,
                           sizeof export));
    return s_spawn(argv, 0, &children->pids[0]);
  }
  if (geteuid() == 0) { /* what --allow-run-as-root says, for older mpiruns */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  }
  HERD_CHECK(s_mpirun_argv(opts, command, argv, np, sizeof np));
  return s_spawn(argv, 0, &children->pids[0]);
}

static void s_describe_exit(char *out, size_t cap, const herd_children_t *children,
                            pid_t pid, int status)
{
  char who[64];
  if (children->via_mpirun)
    snprintf(who, sizeof who, "%s (a worker failed; see above)",
             children->via);
  else
    snprintf(who, sizeof who, "worker process %d", (int)pid);
  if (WIFSIGNALED(status))
    snprintf(out, cap, "%s was killed by signal %d (%s)", who,
             WTERMSIG(status), strsignal(WTERMSIG(status)));
  else
    snprintf(out, cap, "%s exited with status %d", who, WEXITSTATUS(status));
}

void herd_children_reap(herd_children_t *children, herd_coord_t *coord)
{
  for (int i = 0; i < children->count; i++) {
    int status = 0;
    if (!children->pids[i] || waitpid(children->pids[i], &status, WNOHANG) <= 0)
      continue;
    herd_coord_note_exit(coord, children->pids[i], status);
    int failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == HERD_EXIT_USAGE)
      children->usage_failures++;
    if (failed && children->failed_children++ == 0)
      s_describe_exit(children->first_failure, sizeof children->first_failure,
                      children, children->pids[i], status);
    children->pids[i] = 0;
    if (failed && children->restarts_left > 0 && !children->stopping &&
        s_spawn_local(children, i) == HERD_OK) {
      children->restarts_left--;
      children->restarts++;
      fprintf(stderr, "herd: restarted worker %d (pid %d) as a newcomer; %d "
                      "restarts left\n", i, (int)children->pids[i],
              children->restarts_left);
    }
  }
}

int herd_children_alive(const herd_children_t *children)
{
  int alive = 0;
  for (int i = 0; i < children->count; i++)
    alive += children->pids[i] != 0;
  return alive;
}

void herd_children_stop(herd_children_t *children, int signo)
{
  for (int i = 0; i < children->count; i++)
    if (children->pids[i])
      kill(children->pids[i], signo);
  if (!children->stopping) {
    children->stopping = 1;
    children->stop_deadline = herd_cli_now() + S_STOP_GRACE_S;
  }
}

void herd_children_escalate(herd_children_t *children)
{
  if (children->stopping && herd_cli_now() > children->stop_deadline) {
    for (int i = 0; i < children->count; i++)
      if (children->pids[i])
        kill(children->pids[i], SIGKILL);
    children->stop_deadline = herd_cli_now() + S_STOP_GRACE_S;
  }
}

void herd_children_free(herd_children_t *children)
{
  herd_children_stop(children, SIGKILL);
  for (int i = 0; i < children->count; i++)
    if (children->pids[i])
      waitpid(children->pids[i], NULL, 0);
  free(children->pids);
  children->pids = NULL;
  children->count = 0;
}
