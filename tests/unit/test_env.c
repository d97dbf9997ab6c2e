/* Rank discovery from launcher environments (herd/env.h): the order of
 * sources, filling gaps only from the same launch, the derived coordinator
 * address, and Slurm's compressed node lists, valid and malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "herd/env.h"

static const char *const s_vars[] = {
    "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
    "PMIX_RANK", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
    "SLURM_NODEID", "SLURM_JOB_NODELIST", "SLURM_NODELIST",
    "JOB_COMPLETION_INDEX", "HERD_WORLD_SIZE", "RANK", "WORLD_SIZE",
    "LOCAL_RANK", "GROUP_RANK", "HERD_RANK", "HERD_LOCAL_RANK", "HERD_COORD",
    "HERD_COORD_PORT", "HERD_K8S_SERVICE", "HERD_K8S_JOB_NAME"};

static int s_clear_env(void **state)
{
  (void)state;
  for (size_t i = 0; i < sizeof s_vars / sizeof *s_vars; i++)
    unsetenv(s_vars[i]);
  return 0;
}

static void s_expect_hosts(const char *list, const char *const *want, size_t n)
{
  size_t count = 0;
  char host[HERD_ENV_MAX_HOST];
  assert_int_equal(herd_env_nodelist_count(list, &count), HERD_OK);
  assert_int_equal(count, n);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(herd_env_nodelist_host(list, i, host, sizeof host), HERD_OK);
    assert_string_equal(host, want[i]);
  }
  assert_int_equal(herd_env_nodelist_host(list, n, host, sizeof host),
                   HERD_ENOENT);
}

static void test_nodelist_valid(void **state)
{
  (void)state;
  static const char *const one[] = {"localhost"};
  static const char *const padded[] = {"node01", "node02", "node03", "node07"};
  static const char *const mixed[] = {"gpu8", "gpu9", "gpu10", "cpu5", "n001-ib"};
  static const char *const grid[] = {"r1-n3", "r1-n4", "r2-n3", "r2-n4"};
  s_expect_hosts("localhost", one, 1);
  s_expect_hosts("node[01-03,07]", padded, 4);
  s_expect_hosts("gpu[8-10],cpu5,n[001]-ib", mixed, 5);
  s_expect_hosts("r[1-2]-n[3-4]", grid, 4);
}

static void test_nodelist_malformed(void **state)
{
  (void)state;
  static const char *const bad[] = {
      "", "node[", "node]", "node[3-1]", "node[]", "node[1,]", "a,,b", ",a",
      "a,", "n[1234567890]", "n[a-b]", "n[1-]", "n[-1]", "a[1]b[1]c[1]d[1]e[1]",
      "n[0-999999999]", "n[0-999],m[0-999]x[0-9999]"};
  size_t count = 0;
  char host[HERD_ENV_MAX_HOST];
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(herd_env_nodelist_count(bad[i], &count), HERD_EINVAL);
    assert_int_equal(herd_env_nodelist_host(bad[i], 0, host, sizeof host),
                     HERD_EINVAL);
  }
  assert_int_equal(herd_env_nodelist_count(NULL, &count), HERD_EINVAL);
  /* 65 ranges in one bracket; a name longer than the host limit. */
  char big[1024] = "n[";
  for (int i = 0; i < 65; i++)
    snprintf(big + strlen(big), sizeof big - strlen(big), "%d,", i);
  big[strlen(big) - 1] = ']';
  assert_int_equal(herd_env_nodelist_count(big, &count), HERD_EINVAL);
  memset(big, 'a', 600);
  big[600] = '\0';
  assert_int_equal(herd_env_nodelist_count(big, &count), HERD_EINVAL);
  /* A small output buffer is an error, never a truncated name. */
  assert_int_equal(herd_env_nodelist_host("node[100]", 0, host, 5),
                   HERD_ETOOBIG);
}

static void test_discover_none(void **state)
{
  (void)state;
  herd_launch_env_t env;
  assert_int_equal(herd_env_discover(&env), HERD_OK);
  assert_int_equal(env.rank, -1);
  assert_int_equal(env.world_size, -1);
  assert_string_equal(env.source, "none");
  assert_string_equal(env.coord, "");
  assert_string_equal(env.coord_source, "none");
}

static void test_discover_openmpi_first(void **state)
{
  (void)state;
  herd_launch_env_t env;
  setenv("OMPI_COMM_WORLD_RANK", "3", 1);
  setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);
  /* mpirun inside an sbatch script: the batch step's Slurm variables name
   * another launch (rank 0 of 1) and must not fill anything. */
  setenv("SLURM_PROCID", "0", 1);
  setenv("SLURM_NTASKS", "1", 1);
  setenv("SLURM_NODEID", "0", 1);
  setenv("HERD_RANK", "0", 1);
  assert_int_equal(herd_env_discover(&env), HERD_OK);
  assert_int_equal(env.rank, 3);
  assert_int_equal(env.world_size, 4);
  assert_int_equal(env.local_rank, 1);
  assert_int_equal(env.node_id, -1);
  assert_string_equal(env.source, "openmpi");
  assert_string_equal(env.world_source, "openmpi");
}

/* Runs in a child whose environment had PMIX_RANK=5 from the start. */
static int s_pmix_child(void)
{
  herd_launch_env_t env;
  if (herd_env_discover(&env) != HERD_OK || env.rank != 5 ||
      strcmp(env.source, "pmix") || env.world_size != 8)
    return 1;
  setenv("PMIX_RANK", "0", 1); /* what a singleton MPI_Init does: ignored */
  return herd_env_discover(&env) == HERD_OK && env.rank == 5 ? 0 : 1;
}

static void test_discover_pmix_at_start(void **state)
{
  (void)state;
  setenv("PMIX_RANK", "5", 1);
  setenv("SLURM_PROCID", "5", 1);
  setenv("SLURM_NTASKS", "8", 1);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char *argv[] = {"test_env", "pmix-child", NULL};
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  /* Set after this process started (a singleton MPI_Init would): ignored,
   * Slurm gives the rank. */
  setenv("SLURM_PROCID", "3", 1);
  herd_launch_env_t env;
  assert_int_equal(herd_env_discover(&env), HERD_OK);
  assert_int_equal(env.rank, 3);
  assert_string_equal(env.source, "slurm");
}

static void test_discover_pmix_with_slurm(void **state)
{
  (void)state;
  herd_launch_env_t env;
  setenv("SLURM_PROCID", "5", 1);
  setenv("SLURM_NTASKS", "8", 1);
  setenv("SLURM_LOCALID", "1", 1);
  setenv("SLURM_NODEID", "2", 1);
  setenv("SLURM_JOB_NODELIST", "node[07-10]", 1);
  setenv("SLURM_NODELIST", "other", 1);
  assert_int_equal(herd_env_discover(&env), HERD_OK);
  assert_int_equal(env.rank, 5);
  assert_int_equal(env.world_size, 8);
  assert_int_equal(env.local_rank, 1);
  assert_int_equal(env.node_id, 2);
  assert_string_equal(env.source, "slurm");
  assert_string_equal(env.world_source, "slurm");
  assert_string_equal(env.coord, "tcp://node07:29400");
  assert_string_equal(env.coord_source, "slurm");
  setenv("HERD_COORD_PORT", "1234", 1);
  unsetenv("SLURM_JOB_NODELIST");
  assert_int_equal(herd_env_discover(&env), HERD_OK);
  assert_string_equal(env.coord, "tcp://other:1234");
  setenv("HERD_COORD", "tcp://127.0.0.1:5555", 1);
  assert_int_equal(herd_env_discover(&env), HERD_OK);
  assert_string_equal(env.coord, "tcp://127.0.0.1:5555");
  assert_string_equal(env.coord_source, "HERD_COORD");
}

static void test_discover_k8s(void **state)
{
  (void)state;
  herd_launch_env_t env;
  setenv("JOB_COMPLETION_INDEX", "2", 1);
  setenv("HERD_WORLD_SIZE", "4", 1);
  assert_int_equal(herd_env_discover(&env), HERD_OK);
  assert_int_equal(env.rank, 2);
  assert_int_equal(env.world_size, 4);
  assert_string_equal(env.source, "k8s");
  assert_string_equal(env.coord, ""); /* no service named: nothing derived */
  setenv("HERD_K8S_SERVICE", "herd-workers", 1);
  setenv("HERD_K8S_JOB_NAME", "herd-train", 1);
  assert_int_equal(herd_env_discover(&env), HERD_OK);
  assert_string_equal(env.coord, "tcp://herd-train-0.herd-workers:29400");
  assert_string_equal(env.coord_source, "k8s");
  /* Job name from the hostname, which must then be <job>-<index>. */
  unsetenv("HERD_K8S_JOB_NAME");
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  const char *dash = strrchr(host, '-');
  if (dash && dash[1] >= '0' && dash[1] <= '9' && !strchr(dash, '.')) {
    setenv("JOB_COMPLETION_INDEX", dash + 1, 1);
    setenv("HERD_WORLD_SIZE", "10000000", 1);
    herd_result_t rc = herd_env_discover(&env);
    if (rc == HERD_OK)
      assert_string_equal(env.coord_source, "k8s");
  } else {
    assert_int_equal(herd_env_discover(&env), HERD_EINVAL);
  }
}

static void test_discover_torchrun_and_herd(void **state)
{
  (void)state;
  herd_launch_env_t env;
  setenv("HERD_RANK", "1", 1);
  setenv("HERD_WORLD_SIZE", "2", 1);
  setenv("HERD_LOCAL_RANK", "1", 1);
  assert_int_equal(herd_env_discover(&env), HERD_OK);
  assert_int_equal(env.rank, 1);
  assert_int_equal(env.world_size, 2);
  assert_string_equal(env.source, "herd");
  setenv("RANK", "1", 1);
  setenv("WORLD_SIZE", "6", 1);
  setenv("LOCAL_RANK", "0", 1);
  assert_int_equal(herd_env_discover(&env), HERD_OK);
  assert_string_equal(env.source, "torchrun");
  assert_int_equal(env.world_size, 6);
  assert_int_equal(env.local_rank, 0);
}

static void test_discover_malformed(void **state)
{
  (void)state;
  herd_launch_env_t env;
  setenv("OMPI_COMM_WORLD_RANK", "abc", 1);
  assert_int_equal(herd_env_discover(&env), HERD_EINVAL);
  setenv("OMPI_COMM_WORLD_RANK", "-1", 1);
  assert_int_equal(herd_env_discover(&env), HERD_EINVAL);
  setenv("OMPI_COMM_WORLD_RANK", "4", 1);
  setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
  assert_int_equal(herd_env_discover(&env), HERD_EINVAL);
  s_clear_env(NULL);
  setenv("SLURM_PROCID", "0", 1);
  setenv("SLURM_NODELIST", "node[1-", 1);
  assert_int_equal(herd_env_discover(&env), HERD_EINVAL);
  setenv("SLURM_NODELIST", "node1", 1);
  setenv("HERD_COORD_PORT", "0", 1);
  assert_int_equal(herd_env_discover(&env), HERD_EINVAL);
  setenv("HERD_COORD_PORT", "70000", 1);
  assert_int_equal(herd_env_discover(&env), HERD_EINVAL);
  assert_int_equal(herd_env_discover(NULL), HERD_EINVAL);
}

int main(int argc, char **argv)
{
  if (argc > 1 && !strcmp(argv[1], "pmix-child"))
    return s_pmix_child();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nodelist_valid),
      cmocka_unit_test(test_nodelist_malformed),
      cmocka_unit_test_setup(test_discover_none, s_clear_env),
      cmocka_unit_test_setup(test_discover_openmpi_first, s_clear_env),
      cmocka_unit_test_setup(test_discover_pmix_at_start, s_clear_env),
      cmocka_unit_test_setup(test_discover_pmix_with_slurm, s_clear_env),
      cmocka_unit_test_setup(test_discover_k8s, s_clear_env),
      cmocka_unit_test_setup(test_discover_torchrun_and_herd, s_clear_env),
      cmocka_unit_test_setup(test_discover_malformed, s_clear_env),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
