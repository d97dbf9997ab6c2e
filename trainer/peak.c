/* Model FLOP utilization (MFU), as large training stacks report it: the
 * FLOP the model needs per sample, and the peak the host can deliver for
 * this model, so that achieved FLOP/s over peak says how close a step is
 * to the machine's limit.
 *
 * The peak is measured once at start-up by the host's first worker (local
 * rank 0, or every worker when the launcher gives no local rank): sgemm at
 * the model's largest layer and the global batch (the shape that dominates
 * the step), with OpenBLAS on all cores (training runs one thread per
 * rank), best of three ~0.1 s windows; cuBLAS on the GPU with --device
 * cuda. `--peak-gflops` gives it instead (e.g. a vendor's number). The
 * coordinator takes one peak per host and sums them over the job's hosts.
 */
#include <cblas.h>
#include <stdlib.h>
#include <unistd.h>

#include "herd/clock.h"
#include "herd/env.h"
#include "mlp.h"
#include "train.h"

/* Forward (2 m n k per layer), weight gradients (the same) and input
 * gradients of every layer but the first (nothing needs the input's). */
double herd_mlp_flops_per_sample(const herd_mlp_t *mlp)
{
  double flops = 0;
  for (int l = 0; l < herd_mlp_n_layers(mlp); l++) {
    double mk = (double)herd_mlp_dim(mlp, l) * herd_mlp_dim(mlp, l + 1);
    flops += (l > 0 ? 6 : 4) * mk;
  }
  return flops;
}

static int s_largest_layer(const herd_mlp_t *mlp)
{
  int best = 0;
  for (int l = 1; l < herd_mlp_n_layers(mlp); l++)
    if ((double)herd_mlp_dim(mlp, l) * herd_mlp_dim(mlp, l + 1) >
        (double)herd_mlp_dim(mlp, best) * herd_mlp_dim(mlp, best + 1))
      best = l;
  return best;
}

/* sgemm of (m x k) by (k x n)^T, as the forward pass calls it. */
static double s_cpu_peak(int m, int n, int k)
{
  float *a = calloc((size_t)m * k, sizeof *a);
  float *b = calloc((size_t)n * k, sizeof *b);
  float *c = calloc((size_t)m * n, sizeof *c);
  double best = 0;
  if (a && b && c) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    openblas_set_num_threads(cores > 0 ? (int)cores : 1);
    for (int window = 0; window < 4; window++) { /* the first warms up */
      double start = herd_mono_s(), now = start;
      int calls = 0;
      while (now - start < 0.1 || calls < 2) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a,
                    k, b, k, 0.0f, c, n);
        calls++;
        now = herd_mono_s();
      }
      double rate = 2.0 * m * n * k * calls / (now - start);
      if (window > 0 && rate > best)
        best = rate;
    }
    openblas_set_num_threads(1); /* as herd_mlp_new set it */
  }
  free(a);
  free(b);
  free(c);
  return best;
}

double herd_train_host_peak_flops(herd_train_t *train)
{
  if (train->config.peak_gflops > 0)
    return train->config.peak_gflops * 1e9;
  herd_launch_env_t env;
  if (herd_env_discover(&env) == HERD_OK && env.local_rank > 0)
    return 0; /* the host's first worker measures */
  int layer = s_largest_layer(train->mlp);
  int m = (int)train->config.batch;
  int n = herd_mlp_dim(train->mlp, layer + 1), k = herd_mlp_dim(train->mlp, layer);
  double peak = 0;
  if (train->cuda) {
    if (herd_train_cuda_peak_flops(train, m, n, k, &peak) != HERD_OK)
      HERD_LOG(HERD_LOG_WARN, "train", "cannot measure the GPU's peak: %s",
               herd_error_detail());
  } else {
    peak = s_cpu_peak(m, n, k);
  }
  HERD_LOG(HERD_LOG_INFO, "train",
           "host peak for this model: %.1f GFLOP/s (sgemm %dx%d by %dx%d%s; "
           "--peak-gflops to give it)",
           peak / 1e9, m, k, k, n, train->cuda ? ", cuBLAS" : ", all cores");
  return peak;
}
