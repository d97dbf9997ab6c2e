/* Private to launch/: the worker processes of `herd run` and the back-ends
 * that start them (mpirun, srun, local fork/exec). */
#ifndef HERD_LAUNCH_INTERNAL_H
#define HERD_LAUNCH_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

#include "cmds.h" /* herd_cli_monitor_opts_t */
#include "herd/herd.h"
#include "herd/coord.h"

/* One --hostfile / -H entry. */
typedef struct {
  char name[256];
  int slots; /* 0: not given */
  int local; /* this host */
  int gone;  /* did not answer the remote shell (herd_launch_probe_hosts) */
} herd_launch_host_t;

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
  const char *hostfile;  /* mpirun --hostfile (lines `host slots=N`) */
  const char *hosts;     /* mpirun -H host:N,... */
  int64_t min_workers;   /* 0: nproc */
  int64_t max_workers;   /* 0: nproc */
  int64_t max_restarts;  /* local: restart a failed worker as a newcomer;
                          * mpi backend: relaunch the job from checkpoint */
  herd_cli_monitor_opts_t monitor;
  const char *iface;     /* the coordinator's (and mpirun's) interface */
  int64_t coord_port;    /* 0: a free one */
  const char *curve;     /* auto|on|off (HERD_CURVE) */
  /* Resolved by herd_launch_check: where the coordinator listens. */
  char remote_host[256]; /* first --hostfile/-H host not this one; "": all
                            workers run on this host */
  char coord_addr[64];   /* bound and advertised; loopback on one host */
  char network[80];      /* CIDR of coord_addr's network (mpirun's TCP) */
  herd_launch_host_t *host_entries; /* --hostfile then -H, in order */
  int n_host_entries;
} herd_run_opts_t;

typedef struct {
  pid_t *pids;           /* 0 once reaped */
  int count;
  int failed_children;
  char first_failure[256];
  int via_mpirun;        /* one child: mpirun or srun, which owns the ranks */
  const char *via;       /* "mpirun", "srun" or "local" (static) */
  int usage_failures;    /* children that exited HERD_EXIT_USAGE (2) */
  int stopping;          /* a stop signal was sent */
  double stop_deadline;  /* SIGKILL after this (monotonic seconds) */
  char **command;        /* what each local child runs (for restarts) */
  int restarts_left;     /* local workers still allowed to restart */
  int restarts;          /* restarts done */
  int tolerate_failures; /* elastic: a lost worker does not fail the job */
} herd_children_t;

/* Resolves the default launcher, checks the command and the launcher exist
 * and validates --hostfile/-H; HERD_EINVAL (exit 2) on bad input. */
herd_result_t herd_launch_check(herd_run_opts_t *opts, const char *command);
/* launch_hosts.c: reads and validates --hostfile/-H into host_entries
 * (HERD_EINVAL on bad input) and sets remote_host; frees them. */
herd_result_t herd_launch_read_hosts(herd_run_opts_t *opts);
void herd_launch_free_hosts(herd_run_opts_t *opts);
/* Sets coord_addr and network: --iface's address, else the route to
 * remote_host, else loopback. */
herd_result_t herd_launch_find_coord_addr(herd_run_opts_t *opts);
/* Asks every remote host through mpirun's remote shell (`ssh HOST true`,
 * bounded); marks those that do not answer gone. Returns how many are. */
int herd_launch_probe_hosts(herd_run_opts_t *opts);
/* The -H list of the hosts not gone, and *nproc scaled to their slots.
 * HERD_ENOENT when none is left. */
herd_result_t herd_launch_remaining_hosts(herd_run_opts_t *opts, char *out,
                                          size_t cap, int64_t *nproc);

/* Starts the workers in their own process group (posix_spawn, no shell). */
herd_result_t herd_children_launch(const herd_run_opts_t *opts,
                                   char **command, herd_children_t *children);
/* 1 when the workers' backend is elastic (gloo): survivors go on. */
int herd_launch_elastic(const herd_run_opts_t *opts);
/* Reaps exited children without blocking and tells the coordinator; a
 * failed local worker is restarted (as a newcomer) while restarts_left. */
void herd_children_reap(herd_children_t *children, herd_coord_t *coord);
int herd_children_alive(const herd_children_t *children);
/* Sends `signo` to every live child and arms the SIGKILL deadline. */
void herd_children_stop(herd_children_t *children, int signo);
/* SIGKILLs children still alive past the deadline. */
void herd_children_escalate(herd_children_t *children);
void herd_children_free(herd_children_t *children);

#endif
