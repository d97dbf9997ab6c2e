/* A file-system herd_comm_store_t for tests only (HERD_COMM_FILE_STORE=dir
 * or an explicit directory): every key is a file, written to a temporary
 * name and renamed into place so readers never see half a value. Real jobs
 * rendezvous through the coordinator KV (herd_comm_store_from_worker). */
#ifndef HERD_TEST_COMM_STORE_H
#define HERD_TEST_COMM_STORE_H

#include <sys/types.h>

#include "herd/comm.h"

/* Caller owns *store_out; free with herd_comm_store_destroy. `dir` must
 * exist; it is not removed. */
herd_result_t herd_test_file_store_new(const char *dir,
                                       herd_comm_store_t **store_out);
/* Creates a fresh directory under $TMPDIR (or /tmp) into `out`. */
herd_result_t herd_test_store_dir(char *out, size_t cap);
/* Forks `world` children; child r runs body(r, world, dir, arg) and exits
 * with its return value. pids[] receives the children. 0 on success. */
typedef int (*herd_test_rank_fn)(int rank, int world, const char *dir,
                                 void *arg);
int herd_test_spawn(int world, pid_t *pids, herd_test_rank_fn body,
                    const char *dir, void *arg);
/* Waits for every child; returns how many did not exit 0. */
int herd_test_wait_all(int world, const pid_t *pids);
/* rm -r of a directory made by herd_test_store_dir (one level deep). */
void herd_test_store_dir_remove(const char *dir);

#endif
