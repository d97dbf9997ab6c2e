/* Child processes for tests and benches that drive real herd processes
 * (a `herd coord`, test_coord_worker) over pipes. */
#ifndef HERD_TEST_PROC_H
#define HERD_TEST_PROC_H

#include <sys/types.h>

/* fork + execv(argv[0], argv): the child's stdin reads *in_fd's pipe (it
 * sees EOF when the parent closes *in_fd), its stdout goes to *out_fd
 * (non-blocking), its stderr is appended to `log`, or dropped when log is
 * NULL. Returns the pid, or -1 with nothing left open. */
pid_t herd_test_spawn_piped(char *const argv[], const char *log, int *in_fd,
                            int *out_fd);

/* A TCP port on 127.0.0.1 free at the time of the call, or -1. */
int herd_test_free_port(void);

#endif
