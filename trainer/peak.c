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
#include "herd/env.h"
#include "herd/herd.h"
#include "mlp.h"
#include "train.h"

static int s_largest_layer(const herd_mlp_t *mlp)
{
  int best = 0;
  for (int l = 1; l < herd_mlp_n_layers(mlp); l++)
    if ((double)herd_mlp_dim(mlp, l) * herd_mlp_dim(mlp, l + 1) >
        (double)herd_mlp_dim(mlp, best) * herd_mlp_dim(mlp, best + 1))
      best = l;
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
    peak = herd_sgemm_cpu_flops(m, n, k);
  }
  HERD_LOG(HERD_LOG_INFO, "train",
           "host peak for this model: %.1f GFLOP/s (sgemm %dx%d by %dx%d%s; "
           "--peak-gflops to give it)",
           peak / 1e9, m, k, k, n, train->cuda ? ", cuBLAS" : ", all cores");
  return peak;
}
