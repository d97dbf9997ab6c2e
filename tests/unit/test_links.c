/* Network stragglers (coordinator/coord_links.c) and the TCP sampling
 * behind them (common/net_links.c): which rank the link rates name, and
 * that hostile rates from the wire are bounded. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "coord_internal.h"
#include "herd/net.h"

/* Rank r on address addrs[r] reports sending to each peer address at the
 * given rates, `times` times (the judge waits for a few samples). */
static void s_report(coord_metrics_t *m, int rank, const char *addr,
                     const char **peers, const double *mbps, int n, int times)
{
  Herd__StepReport r = HERD__STEP_REPORT__INIT;
  Herd__LinkRate links[8], *ptrs[8];
  for (int i = 0; i < n; i++) {
    herd__link_rate__init(&links[i]);
    links[i].peer = (char *)peers[i];
    links[i].mbps = mbps[i];
    ptrs[i] = &links[i];
  }
  r.addr = (char *)addr;
  r.n_links = (size_t)n;
  r.links = ptrs;
  if (rank >= m->n_ranks)
    m->n_ranks = rank + 1;
  for (int t = 0; t < times; t++)
    coord_links_on_report(&m->ranks[rank], &r);
}

/* A ring 0 -> 1 -> 2 -> 3 -> 0 where host D (rank 3) has a slow cable:
 * its own sends crawl and so do rank 2's sends to it. Rank 0 receives
 * from D, so its forwarding is slowish too; only D is named. */
static void test_ring_names_the_slow_host(void **state)
{
  (void)state;
  coord_metrics_t *m = calloc(1, sizeof *m);
  assert_non_null(m);
  const char *a[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"};
  double fast = 940, slowish = 700, slow = 95;
  s_report(m, 0, a[0], (const char *[]){a[1]}, &slowish, 1, 3);
  s_report(m, 1, a[1], (const char *[]){a[2]}, &fast, 1, 3);
  s_report(m, 2, a[2], (const char *[]){a[3]}, &slow, 1, 3);
  s_report(m, 3, a[3], (const char *[]){a[0]}, &slow, 1, 3);
  coord_link_verdict_t v;
  coord_links_judge(m, &v);
  assert_int_equal(v.straggler[0] + v.straggler[1] + v.straggler[2], 0);
  assert_int_equal(v.straggler[3], 1);
  assert_true(fabs(v.best_mbps[3] - slow) < 1e-9);
  assert_true(v.best_mbps[2] >= fast - 1e-9); /* rank 1's sends to it */
  free(m);
}

/* Too early (fewer samples than the warm-up) or too few ranks: nobody. */
static void test_no_verdict_without_evidence(void **state)
{
  (void)state;
  coord_metrics_t *m = calloc(1, sizeof *m);
  assert_non_null(m);
  const char *a[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3"};
  double fast = 900, slow = 50;
  s_report(m, 0, a[0], (const char *[]){a[1]}, &fast, 1, 1);
  s_report(m, 1, a[1], (const char *[]){a[2]}, &fast, 1, 1);
  s_report(m, 2, a[2], (const char *[]){a[0]}, &slow, 1, 1);
  coord_link_verdict_t v;
  coord_links_judge(m, &v);
  assert_int_equal(v.straggler[2], 0); /* one sample each: warming up */
  memset(m, 0, sizeof *m);
  s_report(m, 0, a[0], (const char *[]){a[1]}, &fast, 1, 5);
  s_report(m, 1, a[1], (const char *[]){a[0]}, &slow, 1, 5);
  coord_links_judge(m, &v);
  assert_int_equal(v.straggler[0] + v.straggler[1], 0); /* two ranks */
  free(m);
}

/* Two ranks of one host talk over the host's own address: that says
 * nothing of its cable and is left out. */
static void test_same_host_links_ignored(void **state)
{
  (void)state;
  coord_metrics_t *m = calloc(1, sizeof *m);
  assert_non_null(m);
  const char *a[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.3"};
  double fast = 900, local = 20000, slow = 90;
  s_report(m, 0, a[0], (const char *[]){a[1]}, &fast, 1, 3);
  s_report(m, 1, a[1], (const char *[]){a[2]}, &slow, 1, 3);
  s_report(m, 2, a[2], (const char *[]){a[3]}, &local, 1, 3);
  s_report(m, 3, a[3], (const char *[]){a[0]}, &slow, 1, 3);
  coord_link_verdict_t v;
  coord_links_judge(m, &v);
  assert_int_equal(v.straggler[2], 1);
  assert_int_equal(v.straggler[3], 1);
  assert_int_equal(v.straggler[0] + v.straggler[1], 0);
  free(m);
}

/* From the wire: NaN, infinite and negative rates are dropped, more links
 * than COORD_LINKS_MAX are cut, long addresses are truncated. */
static void test_hostile_rates_bounded(void **state)
{
  (void)state;
  coord_rank_metrics_t *x = calloc(1, sizeof *x);
  assert_non_null(x);
  enum { N = COORD_LINKS_MAX + 10 };
  Herd__StepReport r = HERD__STEP_REPORT__INIT;
  Herd__LinkRate links[N], *ptrs[N];
  char longname[300];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  double bad[] = {NAN, INFINITY, -5};
  for (int i = 0; i < N; i++) {
    herd__link_rate__init(&links[i]);
    links[i].peer = longname;
    links[i].mbps = i < 3 ? bad[i] : 100;
    ptrs[i] = &links[i];
  }
  r.addr = longname;
  r.n_links = N;
  r.links = ptrs;
  coord_links_on_report(x, &r);
  assert_int_equal(x->n_links, COORD_LINKS_MAX);
  assert_int_equal(strlen(x->addr), COORD_LINK_ADDR_MAX - 1);
  for (int i = 0; i < x->n_links; i++)
    assert_true(x->links[i].mbps == 100);
  free(x);
}

/* `size` bytes from the client end of a loopback connection to the
 * server end (both non-blocking calls, in one thread). */
static int s_loopback_transfer(int client, int server, size_t size)
{
  char *buf = calloc(1, 65536);
  assert_non_null(buf);
  size_t sent = 0, got = 0;
  while (got < size) {
    if (sent < size) {
      ssize_t w = send(client, buf, size - sent < 65536 ? size - sent : 65536,
                       MSG_DONTWAIT);
      if (w > 0)
        sent += (size_t)w;
    }
    ssize_t r = recv(server, buf, 65536, MSG_DONTWAIT);
    if (r > 0)
      got += (size_t)r;
  }
  free(buf);
  return 0;
}

/* The sampler finds a real loopback TCP connection of this process and
 * measures what it moved; the same sample twice gives no rate. */
static void test_sampler_measures_a_real_connection(void **state)
{
  (void)state;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  assert_int_equal(bind(listener, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(listener, 1), 0);
  assert_int_equal(getsockname(listener, (struct sockaddr *)&sa, &len), 0);
  int client = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(client, (struct sockaddr *)&sa, sizeof sa), 0);
  int server = accept(listener, NULL, NULL);
  assert_true(server >= 0);

  static herd_net_link_t before[HERD_NET_LINKS_MAX], after[HERD_NET_LINKS_MAX];
  int n0 = herd_net_links_sample(before, HERD_NET_LINKS_MAX);
  assert_true(n0 >= 2); /* both ends of the connection */
  herd_net_link_rate_t rates[4];
  assert_int_equal(herd_net_links_rates(before, n0, before, n0, rates, 4), 0);
  s_loopback_transfer(client, server, 256u << 20); /* ~0.1 s: busy time counts in jiffies */
  int n1 = herd_net_links_sample(after, HERD_NET_LINKS_MAX);
  int n = herd_net_links_rates(before, n0, after, n1, rates, 4);
  assert_int_equal(n, 1); /* one peer address: 127.0.0.1 */
  assert_string_equal(rates[0].peer, "127.0.0.1");
  assert_true(rates[0].mbps > 0 && isfinite(rates[0].mbps));
  close(client);
  close(server);
  close(listener);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ring_names_the_slow_host),
      cmocka_unit_test(test_no_verdict_without_evidence),
      cmocka_unit_test(test_same_host_links_ignored),
      cmocka_unit_test(test_hostile_rates_bounded),
      cmocka_unit_test(test_sampler_measures_a_real_connection),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
