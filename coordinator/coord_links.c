/* Network stragglers: the host whose links are slow.
 *
 * In a synchronous all-reduce every rank waits as long as the slowest
 * link, so per-step timings make all ranks look alike. About once a second
 * each worker reports what its TCP connections delivered per peer address
 * (common/net_links.c). A link is slow when either end's cable is: the
 * capped host's own sends are slow, and so are its neighbours' sends to it.
 * A rank's *best* link to another host (its own sends, and others' sends to
 * it) is therefore slow only when its own host is the slow one; a rank
 * whose best link runs below COORD_LINK_STRAGGLER_FRACTION of the median
 * over the ranks, and near the slowest, is the straggler. Rates are judged
 * after a few seconds of samples, as the best each path has shown lately. Links between ranks of one host (same
 * address) say nothing of the cable and are left out.
 *
 * Everything from the wire is bounded: at most COORD_LINKS_MAX links per
 * rank, addresses cut to COORD_LINK_ADDR_MAX, rates finite and >= 0.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_internal.h"

#define COORD_LINK_DECAY 0.95         /* per report, about once a second */
#define COORD_LINK_WARMUP_SAMPLES 3   /* reports with rates before judging */
#define COORD_LINK_NEAREST 2.0

void coord_links_on_report(coord_rank_metrics_t *x, const Herd__StepReport *r)
{
  if (r->addr && r->addr[0])
    snprintf(x->addr, sizeof x->addr, "%s", r->addr);
  if (r->n_links == 0)
    return;
  /* One second of TCP is a noisy sample (a window spent waiting on a slow
   * neighbour, a token bucket's burst): each peer's rate is the best seen
   * lately, decaying, which estimates what the path can carry. */
  coord_rank_metrics_t old = *x;
  int n = 0;
  for (size_t i = 0; i < r->n_links && n < COORD_LINKS_MAX; i++) {
    const Herd__LinkRate *l = r->links[i];
    if (!l->peer || !isfinite(l->mbps) || l->mbps < 0)
      continue;
    snprintf(x->links[n].peer, sizeof x->links[n].peer, "%s", l->peer);
    x->links[n].mbps = l->mbps;
    for (int k = 0; k < old.n_links; k++)
      if (strcmp(old.links[k].peer, x->links[n].peer) == 0 &&
          old.links[k].mbps * COORD_LINK_DECAY > x->links[n].mbps)
        x->links[n].mbps = old.links[k].mbps * COORD_LINK_DECAY;
    n++;
  }
  x->n_links = n;
  x->link_samples++;
}

static void s_note(double *best, double mbps)
{
  if (mbps > *best)
    *best = mbps;
}

static int s_cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void coord_links_judge(const coord_metrics_t *m, coord_link_verdict_t *out)
{
  memset(out, 0, sizeof *out);
  for (int r = 0; r < m->n_ranks; r++) {
    const coord_rank_metrics_t *x = &m->ranks[r];
    for (int i = 0; i < x->n_links; i++) {
      if (!x->addr[0] || strcmp(x->links[i].peer, x->addr) == 0)
        continue; /* same host, or own address unknown */
      s_note(&out->best_mbps[r], x->links[i].mbps);
      for (int p = 0; p < m->n_ranks; p++)
        if (p != r && strcmp(m->ranks[p].addr, x->links[i].peer) == 0)
          s_note(&out->best_mbps[p], x->links[i].mbps);
    }
  }
  double rates[COORD_METRICS_RANKS_MAX];
  int n = 0;
  for (int r = 0; r < m->n_ranks; r++)
    if (out->best_mbps[r] > 0)
      rates[n++] = out->best_mbps[r];
  int warm = 1;
  for (int r = 0; r < m->n_ranks; r++)
    warm &= out->best_mbps[r] == 0 ||
            m->ranks[r].link_samples >= COORD_LINK_WARMUP_SAMPLES;
  if (n < 3 || !warm)
    return; /* two ranks cannot say which end is slow; nor can a moment */
  qsort(rates, (size_t)n, sizeof *rates, s_cmp_double);
  out->median_mbps = rates[n / 2];
  /* The slow host's neighbours see part of its slowness (their sends to
   * it crawl, and what they forward arrives from it in dribs): only ranks
   * within COORD_LINK_NEAREST of the slowest are named. */
  for (int r = 0; r < m->n_ranks; r++)
    out->straggler[r] =
        out->best_mbps[r] > 0 &&
        out->best_mbps[r] < COORD_LINK_STRAGGLER_FRACTION * out->median_mbps &&
        out->best_mbps[r] <= COORD_LINK_NEAREST * rates[0];
}
