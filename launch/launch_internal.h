/* Private to launch/: the worker processes of `herd run` and the back-ends
 * that start them (mpirun, local fork/exec). */
#ifndef HERD_LAUNCH_INTERNAL_H
#define HERD_LAUNCH_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

#include "herd/herd.h"

typedef struct {
  int64_t nproc;
  const char *run_dir;
  int64_t ckpt_every;
  const char *resume;
  const char *launcher; /* resolved by herd_launch_check */
  const char *backend;
  double progress_interval_s;
  double join_timeout_s;
  int64_t heartbeat_ms, heartbeat_misses;
} herd_run_opts_t;

typedef struct {
  pid_t *pids;           /* 0 once reaped */
  int count;
  int failed_children;
  char first_failure[256];
  int via_mpirun;        /* one child: mpirun, which owns the ranks */
  int stopping;          /* a stop signal was sent */
  double stop_deadline;  /* SIGKILL after this (monotonic seconds) */
} herd_children_t;

/* Resolves the default launcher and checks the command exists. */
herd_result_t herd_launch_check(herd_run_opts_t *opts, const char *command);
/* Starts the workers in their own process group. */
herd_result_t herd_children_launch(const herd_run_opts_t *opts,
                                   char **command, herd_children_t *children);
/* Reaps exited children without blocking and tells the coordinator. */
void herd_children_reap(herd_children_t *children, herd_coord_t *coord);
int herd_children_alive(const herd_children_t *children);
/* Sends `signo` to every live child and arms the SIGKILL deadline. */
void herd_children_stop(herd_children_t *children, int signo);
/* SIGKILLs children still alive past the deadline. */
void herd_children_escalate(herd_children_t *children);
void herd_children_free(herd_children_t *children);

#endif
