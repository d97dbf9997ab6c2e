/* How fast this process's TCP connections move data (herd/net.h).
 *
 * Every socket of the process is found under /proc/self/fd and asked for
 * TCP_INFO. The kernel counts, per connection, the bytes the peer has
 * acknowledged and the time data was in flight (tcpi_busy_time, Linux
 * 4.10+, less the time the receiver's window held it up): their ratio over
 * an interval is the rate the path delivered while it had work, whatever
 * the applications' pauses. A link capped at a tenth
 * of the others shows a tenth of their rate, which per-step timings cannot
 * show: in a synchronous all-reduce every rank waits equally for the slow
 * one.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "herd/net.h"

/* One socket's counters, or 0 when fd is not a connected TCP socket. */
static int s_sample_fd(int fd, herd_net_link_t *out)
{
  struct tcp_info info;
  socklen_t len = sizeof info;
  memset(&info, 0, sizeof info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
      len < offsetof(struct tcp_info, tcpi_rwnd_limited) + sizeof info.tcpi_rwnd_limited ||
      info.tcpi_state != 1 /* TCP_ESTABLISHED */)
    return 0;
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0)
    return 0;
  const void *addr = peer.ss_family == AF_INET
                         ? (const void *)&((struct sockaddr_in *)&peer)->sin_addr
                         : (const void *)&((struct sockaddr_in6 *)&peer)->sin6_addr;
  if (!inet_ntop(peer.ss_family, addr, out->peer, sizeof out->peer))
    return 0;
  struct stat st;
  out->inode = fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : (uint64_t)fd;
  out->bytes_acked = info.tcpi_bytes_acked;
  /* Time stalled on the receiver's window is the receiving application's
   * pace, not the path's: left out. */
  out->busy_us = info.tcpi_busy_time >= info.tcpi_rwnd_limited
                     ? info.tcpi_busy_time - info.tcpi_rwnd_limited
                     : 0;
  return 1;
}

int herd_net_links_sample(herd_net_link_t *out, int max)
{
  DIR *dir = opendir("/proc/self/fd");
  if (!dir)
    return 0;
  int n = 0, dir_fd = dirfd(dir);
  struct dirent *e;
  while (n < max && (e = readdir(dir))) {
    char *end;
    long fd = strtol(e->d_name, &end, 10);
    if (*end || end == e->d_name || fd == dir_fd)
      continue;
    struct stat st;
    if (fstat((int)fd, &st) != 0 || !S_ISSOCK(st.st_mode))
      continue;
    n += s_sample_fd((int)fd, &out[n]);
  }
  closedir(dir);
  return n;
}

/* Per peer address: bytes and busy time moved since `before`, summed over
 * that peer's connections; then Mbit/s where enough moved to judge. */
int herd_net_links_rates(const herd_net_link_t *before, int n_before,
                         const herd_net_link_t *now, int n_now,
                         herd_net_link_rate_t *out, int max)
{
  int n = 0;
  uint64_t bytes[HERD_NET_LINKS_MAX] = {0}, busy[HERD_NET_LINKS_MAX] = {0};
  for (int i = 0; i < n_now; i++) {
    const herd_net_link_t *prev = NULL;
    for (int j = 0; j < n_before && !prev; j++)
      if (before[j].inode == now[i].inode)
        prev = &before[j];
    if (!prev || now[i].bytes_acked < prev->bytes_acked ||
        now[i].busy_us < prev->busy_us)
      continue;
    int k = 0;
    while (k < n && strcmp(out[k].peer, now[i].peer) != 0)
      k++;
    if (k == n) {
      if (n == max || n == HERD_NET_LINKS_MAX)
        continue;
      snprintf(out[n].peer, sizeof out[n].peer, "%s", now[i].peer);
      n++;
    }
    bytes[k] += now[i].bytes_acked - prev->bytes_acked;
    busy[k] += now[i].busy_us - prev->busy_us;
  }
  int kept = 0;
  for (int k = 0; k < n; k++) {
    if (bytes[k] < HERD_NET_LINK_MIN_BYTES || busy[k] == 0)
      continue;
    out[kept] = out[k];
    out[kept].mbps = (double)bytes[k] * 8.0 / (double)busy[k];
    kept++;
  }
  return kept;
}
