/* Worker processes for `herd run`: the mpirun and local back-ends.
 *
 * mpirun gets the options a single-host job needs (oversubscription on small
 * machines, shared-memory transport, ranks that yield while waiting, root
 * allowed in containers) and `-x` for every HERD_* variable. The local
 * back-end fork/execs N copies with HERD_RANK/HERD_WORLD_SIZE set. Children
 * run in their own process group so a terminal Ctrl-C reaches herd run,
 * which stops them on purpose (SIGTERM, then SIGKILL after a grace period).
 */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmds.h"
#include "launch_internal.h"

extern char **environ;

#define S_STOP_GRACE_S 10.0
#define S_MAX_ARGS 256

static const char *const s_exported[] = {
    "HERD_COORD", "HERD_TOKEN", "HERD_JOB_ID", "HERD_RUN_DIR",
    "HERD_CKPT_DIR", "HERD_CKPT_EVERY", "HERD_RESUME", "HERD_BACKEND",
    "HERD_HEARTBEAT_MS", "HERD_LOG_LEVEL", "HERD_LOG_SUBSYS", "PATH"};

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

herd_result_t herd_launch_check(herd_run_opts_t *opts, const char *command)
{
  char path[4096];
  if (!opts->launcher)
    opts->launcher = s_find_program("mpirun", path, sizeof path) ? "mpirun"
                                                                 : "local";
  if (!strcmp(opts->launcher, "mpirun") &&
      !s_find_program("mpirun", path, sizeof path))
    return herd_error_set(HERD_EINVAL, "--launcher mpirun: mpirun not found "
                                       "in PATH (install openmpi-bin)");
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

static int s_push(char **argv, int *argc, const char *arg)
{
  if (*argc >= S_MAX_ARGS - 1)
    return -1;
  argv[(*argc)++] = (char *)arg;
  argv[*argc] = NULL;
  return 0;
}

/* mpirun argv: options, -x for each HERD_* variable, then the command. */
static herd_result_t s_mpirun_argv(const herd_run_opts_t *opts, char **command,
                                   char **argv, char *np, size_t np_cap)
{
  static const char *const base[] = {
      "mpirun", "--quiet", "--oversubscribe", "--bind-to", "none", "--mca", "btl",
      "self,vader", "--mca", "btl_vader_single_copy_mechanism", "none",
      "--mca", "mpi_yield_when_idle", "1", "--mca", "oob_tcp_if_include", "lo"};
  int argc = 0, bad = 0;
  for (size_t i = 0; i < sizeof base / sizeof *base; i++)
    bad |= s_push(argv, &argc, base[i]);
  if (geteuid() == 0)
    bad |= s_push(argv, &argc, "--allow-run-as-root");
  snprintf(np, np_cap, "%lld", (long long)opts->nproc);
  bad |= s_push(argv, &argc, "-np") | s_push(argv, &argc, np);
  for (size_t i = 0; i < sizeof s_exported / sizeof *s_exported; i++)
    if (getenv(s_exported[i]))
      bad |= s_push(argv, &argc, "-x") | s_push(argv, &argc, s_exported[i]);
  for (char **arg = command; *arg; arg++)
    bad |= s_push(argv, &argc, *arg);
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

static herd_result_t s_launch_local(const herd_run_opts_t *opts,
                                    char **command, herd_children_t *children)
{
  char number[32];
  snprintf(number, sizeof number, "%lld", (long long)opts->nproc);
  setenv("HERD_WORLD_SIZE", number, 1);
  for (int rank = 0; rank < children->count; rank++) {
    snprintf(number, sizeof number, "%d", rank);
    setenv("HERD_RANK", number, 1);
    setenv("HERD_LOCAL_RANK", number, 1);
    pid_t group = rank == 0 ? 0 : children->pids[0];
    HERD_CHECK(s_spawn(command, group, &children->pids[rank]));
  }
  unsetenv("HERD_RANK");
  unsetenv("HERD_LOCAL_RANK");
  unsetenv("HERD_WORLD_SIZE");
  return HERD_OK;
}

herd_result_t herd_children_launch(const herd_run_opts_t *opts,
                                   char **command, herd_children_t *children)
{
  int local = !strcmp(opts->launcher, "local");
  children->count = local ? (int)opts->nproc : 1;
  children->pids = calloc((size_t)children->count, sizeof *children->pids);
  if (!children->pids)
    return HERD_ENOMEM;
  if (local) {
    herd_result_t rc = s_launch_local(opts, command, children);
    if (rc != HERD_OK)
      herd_children_stop(children, SIGKILL);
    return rc;
  }
  if (geteuid() == 0) { /* what --allow-run-as-root says, for older mpiruns */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  }
  char *argv[S_MAX_ARGS], np[32];
  children->via_mpirun = 1;
  HERD_CHECK(s_mpirun_argv(opts, command, argv, np, sizeof np));
  return s_spawn(argv, 0, &children->pids[0]);
}

static void s_describe_exit(char *out, size_t cap, const herd_children_t *children,
                            pid_t pid, int status)
{
  char who[64];
  if (children->via_mpirun)
    snprintf(who, sizeof who, "mpirun (a worker failed; see above)");
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
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) &&
        children->failed_children++ == 0)
      s_describe_exit(children->first_failure, sizeof children->first_failure,
                      children, children->pids[i], status);
    children->pids[i] = 0;
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
