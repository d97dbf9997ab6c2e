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
 * No shell is ever involved: every argument goes to exec as argv, and host
 * names and files that could read as options ("-x") are refused. Children
 * run in their own process group so a terminal Ctrl-C reaches herd run,
 * which stops them on purpose (SIGTERM, then SIGKILL after a grace period).
 *
 * If herd run itself dies (kill -9, OOM), nobody would watch the job: mpirun
 * and srun are started with a parent-death signal, SIGUSR1, which both
 * forward to the ranks and herd-train takes as "finish the step, save,
 * exit"; local workers notice the re-parenting themselves
 * (HERD_LAUNCHER_PID, train_main.c).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "herd/fs.h"
#include "herd/clock.h"
#include "cmds.h"
#include "herd/net.h"
#include "launch_internal.h"

extern char **environ;

#define S_STOP_GRACE_S 10.0
#define S_MAX_ARGS 256

/* The i-th variable mpirun -x / srun --export pass on, NULL after the last:
 * every registered setting marked HERD_TO_WORKERS (herd/settings.h), then
 * PATH (so the workers find the same programs). */
static const char *s_exported(int i)
{
  for (int id = 0; id < HERD_S_COUNT; id++)
    if ((herd_settings_g[id].readers & HERD_TO_WORKERS) && i-- == 0)
      return herd_settings_g[id].env;
  return i == 0 ? "PATH" : NULL;
}

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
  return herd_launch_read_hosts(opts);
}

herd_result_t herd_launch_check(herd_run_opts_t *opts, const char *command)
{
  char path[4096];
  HERD_CHECK(s_check_launcher(opts));
  HERD_CHECK(herd_launch_find_coord_addr(opts));
  if (!s_find_program(command, path, sizeof path))
    return herd_error_set(HERD_EINVAL, "command '%s' not found%s", command,
                          strchr(command, '/') ? " or not executable"
                                               : " in PATH");
  if (herd_mkdir_p(opts->run_dir, 0777) != HERD_OK) {
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
  for (int i = 0; s_exported(i); i++)
    if (getenv(s_exported(i)))
      bad |= s_push(argv, &argc, "-x") | s_push(argv, &argc, s_exported(i));
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
  for (int i = 0; s_exported(i); i++)
    if (getenv(s_exported(i)) && used < export_cap)
      used += (size_t)snprintf(export + used, export_cap - used, ",%s",
                               s_exported(i));
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

/* The child's half of s_spawn_watched: only async-signal-safe calls
 * between fork and exec (herd run has threads). An exec failure's errno
 * goes back through `report`. */
static void s_exec_watched(char **argv, pid_t group, int death_signal,
                           pid_t parent, int report)
{
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL); /* herd run ignores it; its children need not */
  setpgid(0, group);
  prctl(PR_SET_PDEATHSIG, death_signal);
  if (getppid() != parent)
    _exit(127); /* herd run died before the signal was armed */
  execvp(argv[0], argv);
  int err = errno;
  if (write(report, &err, sizeof err) < 0)
    _exit(127);
  _exit(127);
}

/* Like s_spawn, and the child gets `death_signal` when herd run dies. */
static herd_result_t s_spawn_watched(char **argv, pid_t group,
                                     int death_signal, pid_t *pid_out)
{
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0)
    return herd_error_set(HERD_ESYS, "cannot start '%s': pipe: %s", argv[0],
                          strerror(errno));
  pid_t parent = getpid(), pid = fork();
  if (pid == 0)
    s_exec_watched(argv, group, death_signal, parent, report[1]);
  int err = pid < 0 ? errno : 0;
  close(report[1]);
  if (pid > 0 && read(report[0], &err, sizeof err) == (ssize_t)sizeof err)
    waitpid(pid, NULL, 0); /* exec failed: reap it here */
  else if (pid > 0)
    err = 0; /* the pipe closed on exec: it runs */
  close(report[0]);
  if (err)
    return herd_error_set(HERD_ESYS, "cannot start '%s': %s", argv[0],
                          strerror(err));
  *pid_out = pid;
  return HERD_OK;
}

static herd_result_t s_spawn(char **argv, pid_t group, pid_t *pid_out)
{
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                      POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, group);
  sigset_t none, defaults;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE); /* herd run ignores it; its children need not */
  posix_spawnattr_setsigdefault(&attr, &defaults);
  int err = posix_spawnp(pid_out, argv[0], NULL, &attr, argv, environ);
  posix_spawnattr_destroy(&attr);
  if (err)
    return herd_error_set(HERD_ESYS, "cannot start '%s': %s", argv[0],
                          strerror(err));
  return HERD_OK;
}

int herd_launch_elastic(const herd_run_opts_t *opts)
{
  const char *backend =
      opts->backend ? opts->backend : herd_setting_string(HERD_S_BACKEND);
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
  /* herd-train stops with a checkpoint once its parent is no longer this
   * process (herd run was killed): nobody would watch it otherwise. */
  snprintf(number, sizeof number, "%d", (int)getpid());
  setenv("HERD_LAUNCHER_PID", number, 1);
  pid_t group = index == 0 ? 0 : children->pids[0];
  if (group && kill(group, 0) != 0)
    group = 0; /* the group's first process is gone: start a new group */
  herd_result_t rc = s_spawn(children->command, group, &children->pids[index]);
  unsetenv("HERD_RANK");
  unsetenv("HERD_LOCAL_RANK");
  unsetenv("HERD_WORLD_SIZE");
  unsetenv("HERD_LAUNCHER_PID");
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
    return s_spawn_watched(argv, 0, SIGUSR1, &children->pids[0]);
  }
  if (geteuid() == 0) { /* what --allow-run-as-root says, for older mpiruns */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  }
  HERD_CHECK(s_mpirun_argv(opts, command, argv, np, sizeof np));
  return s_spawn_watched(argv, 0, SIGUSR1, &children->pids[0]);
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
    children->stop_deadline = herd_mono_s() + S_STOP_GRACE_S;
  }
}

void herd_children_escalate(herd_children_t *children)
{
  if (children->stopping && herd_mono_s() > children->stop_deadline) {
    for (int i = 0; i < children->count; i++)
      if (children->pids[i])
        kill(children->pids[i], SIGKILL);
    children->stop_deadline = herd_mono_s() + S_STOP_GRACE_S;
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
