/* Which local address to advertise (herd/net.h).
 *
 * The route lookup is the classic connected-UDP trick: connect() on a
 * datagram socket asks the kernel's routing table which source address it
 * would use toward the peer, without sending a packet. That is the address
 * the peer (and every host on the same path) can reach us at, which is what
 * Gloo, NCCL and the coordinator endpoint need; gethostname() resolution is
 * not (it often maps to 127.0.1.1 on Debian).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "herd/net.h"

herd_result_t herd_net_split_endpoint(const char *endpoint, char *host,
                                      size_t host_cap, int *port)
{
  const char *p = endpoint && !strncmp(endpoint, "tcp://", 6) ? endpoint + 6
                                                               : NULL;
  const char *colon = p ? strrchr(p, ':') : NULL;
  const char *begin = p, *end = colon;
  if (p && p[0] == '[') { /* tcp://[v6]:port */
    begin = p + 1;
    end = strchr(p, ']');
    if (!end || end + 1 != colon)
      end = NULL;
  }
  char *tail = NULL;
  long value = colon ? strtol(colon + 1, &tail, 10) : 0;
  if (!end || end == begin || (size_t)(end - begin) >= host_cap ||
      !tail || *tail || tail == colon + 1 || value < 0 || value > 65535)
    return herd_error_set(HERD_EINVAL, "endpoint '%s': expected "
                          "tcp://HOST:PORT", endpoint ? endpoint : "");
  snprintf(host, host_cap, "%.*s", (int)(end - begin), begin);
  if (port)
    *port = (int)value;
  return HERD_OK;
}

static herd_result_t s_numeric(const struct sockaddr *sa, socklen_t len,
                               char *out, size_t cap)
{
  int err = getnameinfo(sa, len, out, (socklen_t)cap, NULL, 0, NI_NUMERICHOST);
  if (err)
    return herd_error_set(HERD_ESYS, "getnameinfo: %s", gai_strerror(err));
  char *zone = strchr(out, '%'); /* link-local zone: peers cannot use it */
  if (zone)
    *zone = '\0';
  return HERD_OK;
}

/* The source address of the route toward one resolved peer address. */
static herd_result_t s_route_source(const struct addrinfo *peer, char *out,
                                    size_t cap)
{
  int fd = socket(peer->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return herd_error_set(HERD_ESYS, "socket: %s", strerror(errno));
  struct sockaddr_storage local;
  socklen_t len = sizeof local;
  herd_result_t rc = HERD_OK;
  if (connect(fd, peer->ai_addr, peer->ai_addrlen) != 0 ||
      getsockname(fd, (struct sockaddr *)&local, &len) != 0)
    rc = herd_error_set(HERD_ENOENT, "no route: %s", strerror(errno));
  else
    rc = s_numeric((struct sockaddr *)&local, len, out, cap);
  close(fd);
  return rc;
}

static herd_result_t s_route_toward(const char *peer, char *out, size_t cap)
{
  char host[HERD_NET_HOST_MAX];
  if (!strncmp(peer, "tcp://", 6))
    HERD_CHECK(herd_net_split_endpoint(peer, host, sizeof host, NULL));
  else
    snprintf(host, sizeof host, "%s", peer);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
  struct addrinfo *list = NULL;
  int err = getaddrinfo(host, "9", &hints, &list);
  if (err)
    return herd_error_set(HERD_ENOENT, "cannot resolve '%s': %s", host,
                          gai_strerror(err));
  herd_result_t rc = HERD_ENOENT;
  for (struct addrinfo *ai = list; ai && rc != HERD_OK; ai = ai->ai_next)
    rc = s_route_source(ai, out, cap);
  freeaddrinfo(list);
  if (rc != HERD_OK)
    return herd_error_set(HERD_ENOENT, "no route toward '%s'", host);
  return HERD_OK;
}

static int s_usable(const struct ifaddrs *ifa)
{
  return ifa->ifa_addr && (ifa->ifa_addr->sa_family == AF_INET ||
                           ifa->ifa_addr->sa_family == AF_INET6);
}

static socklen_t s_addr_len(const struct sockaddr *sa)
{
  return sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                  : sizeof(struct sockaddr_in6);
}

static const int s_families[] = {AF_INET, AF_INET6};

/* IPv4 first: peers on the same network almost always share it. */
static herd_result_t s_iface_addr(const char *iface, char *out, size_t cap)
{
  struct ifaddrs *list = NULL;
  if (getifaddrs(&list) != 0)
    return herd_error_set(HERD_ESYS, "getifaddrs: %s", strerror(errno));
  herd_result_t rc = HERD_ENOENT;
  for (int f = 0; f < 2 && rc != HERD_OK; f++)
    for (struct ifaddrs *ifa = list; ifa && rc != HERD_OK; ifa = ifa->ifa_next)
      if (s_usable(ifa) && ifa->ifa_addr->sa_family == s_families[f] &&
          !strcmp(ifa->ifa_name, iface))
        rc = s_numeric(ifa->ifa_addr, s_addr_len(ifa->ifa_addr), out, cap);
  char names[512] = "";
  size_t used = 0;
  for (struct ifaddrs *ifa = list; ifa && rc != HERD_OK; ifa = ifa->ifa_next)
    if (s_usable(ifa) && !strstr(names, ifa->ifa_name) && used < sizeof names)
      used += (size_t)snprintf(names + used, sizeof names - used, "%s%s",
                               used ? ", " : "", ifa->ifa_name);
  freeifaddrs(list);
  if (rc != HERD_OK)
    return herd_error_set(HERD_ENOENT, "interface '%s' has no IP address "
                          "(interfaces with one: %s)", iface,
                          names[0] ? names : "none");
  return HERD_OK;
}

herd_result_t herd_net_advertise_addr(const char *iface, const char *peer,
                                      char *out, size_t cap)
{
  if (iface && iface[0])
    return s_iface_addr(iface, out, cap);
  if (!peer || !peer[0])
    return herd_error_set(HERD_EINVAL, "advertise address: no interface "
                                       "and no peer given");
  return s_route_toward(peer, out, cap);
}

/* Prefix length of a netmask. */
static int s_prefix_len(const struct sockaddr *mask)
{
  const unsigned char *bytes;
  size_t n;
  if (mask->sa_family == AF_INET) {
    bytes = (const unsigned char *)&((const struct sockaddr_in *)mask)->sin_addr;
    n = 4;
  } else {
    bytes = ((const struct sockaddr_in6 *)mask)->sin6_addr.s6_addr;
    n = 16;
  }
  int bits = 0;
  for (size_t i = 0; i < n; i++)
    bits += __builtin_popcount(bytes[i]);
  return bits;
}

/* The interface entry holding `addr`; the caller frees *list. */
static const struct ifaddrs *s_find_local(const char *addr,
                                          struct ifaddrs **list)
{
  *list = NULL;
  if (getifaddrs(list) != 0)
    return NULL;
  char text[HERD_NET_ADDR_MAX];
  for (struct ifaddrs *ifa = *list; ifa; ifa = ifa->ifa_next)
    if (s_usable(ifa) &&
        s_numeric(ifa->ifa_addr, s_addr_len(ifa->ifa_addr), text,
                  sizeof text) == HERD_OK &&
        !strcmp(text, addr))
      return ifa;
  return NULL;
}

herd_result_t herd_net_iface_of(const char *addr, char *iface, size_t cap)
{
  struct ifaddrs *list;
  const struct ifaddrs *ifa = s_find_local(addr, &list);
  if (ifa)
    snprintf(iface, cap, "%s", ifa->ifa_name);
  if (list)
    freeifaddrs(list);
  return ifa ? HERD_OK
             : herd_error_set(HERD_ENOENT, "no local interface has address "
                                           "%s", addr);
}

herd_result_t herd_net_cidr_of(const char *addr, char *cidr, size_t cap)
{
  struct ifaddrs *list;
  const struct ifaddrs *ifa = s_find_local(addr, &list);
  herd_result_t rc = HERD_ENOENT;
  if (ifa && ifa->ifa_netmask) {
    struct sockaddr_storage net;
    memcpy(&net, ifa->ifa_addr, s_addr_len(ifa->ifa_addr));
    unsigned char *bytes, *mask;
    size_t n;
    if (net.ss_family == AF_INET) {
      bytes = (unsigned char *)&((struct sockaddr_in *)&net)->sin_addr;
      mask = (unsigned char *)&((struct sockaddr_in *)ifa->ifa_netmask)->sin_addr;
      n = 4;
    } else {
      bytes = ((struct sockaddr_in6 *)&net)->sin6_addr.s6_addr;
      mask = ((struct sockaddr_in6 *)ifa->ifa_netmask)->sin6_addr.s6_addr;
      n = 16;
    }
    for (size_t i = 0; i < n; i++)
      bytes[i] &= mask[i];
    char text[HERD_NET_ADDR_MAX];
    rc = s_numeric((struct sockaddr *)&net, s_addr_len(ifa->ifa_addr), text,
                   sizeof text);
    if (rc == HERD_OK)
      snprintf(cidr, cap, "%s/%d", text, s_prefix_len(ifa->ifa_netmask));
  }
  if (list)
    freeifaddrs(list);
  return rc == HERD_OK ? HERD_OK
                       : herd_error_set(HERD_ENOENT, "no local network holds "
                                                     "address %s", addr);
}

static int s_is_loopback(const char *addr)
{
  return !strncmp(addr, "127.", 4) || !strcmp(addr, "::1");
}

int herd_net_is_local(const char *host)
{
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
  struct addrinfo *list = NULL;
  if (!host || getaddrinfo(host, "9", &hints, &list) != 0)
    return 0;
  int local = 0;
  for (struct addrinfo *ai = list; ai && !local; ai = ai->ai_next) {
    char text[HERD_NET_ADDR_MAX];
    if (s_numeric(ai->ai_addr, ai->ai_addrlen, text, sizeof text) != HERD_OK)
      continue;
    struct ifaddrs *ifs = NULL;
    local = s_is_loopback(text) || s_find_local(text, &ifs) != NULL;
    if (ifs)
      freeifaddrs(ifs);
  }
  freeaddrinfo(list);
  return local;
}

void herd_net_any_addr(char *out, size_t cap)
{
  struct ifaddrs *list = NULL;
  snprintf(out, cap, "127.0.0.1");
  if (getifaddrs(&list) != 0)
    return;
  int found = 0;
  for (int f = 0; f < 2 && !found; f++)
    for (struct ifaddrs *ifa = list; ifa && !found; ifa = ifa->ifa_next) {
      char text[HERD_NET_ADDR_MAX];
      found = s_usable(ifa) && ifa->ifa_addr->sa_family == s_families[f] &&
              (ifa->ifa_flags & IFF_UP) && !(ifa->ifa_flags & IFF_LOOPBACK) &&
              s_numeric(ifa->ifa_addr, s_addr_len(ifa->ifa_addr), text,
                        sizeof text) == HERD_OK &&
              strncmp(text, "fe80:", 5) != 0;
      if (found)
        snprintf(out, cap, "%s", text);
    }
  freeifaddrs(list);
}

void herd_net_format_endpoint(const char *host, int port, char *out,
                              size_t cap)
{
  snprintf(out, cap, strchr(host, ':') ? "tcp://[%s]:%d" : "tcp://%s:%d",
           host, port);
}

int herd_net_is_loopback(const char *host)
{
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
  struct addrinfo *list = NULL;
  if (!host || !*host || getaddrinfo(host, "9", &hints, &list) != 0)
    return 0;
  int all = list != NULL;
  for (struct addrinfo *a = list; a; a = a->ai_next) {
    if (a->ai_family == AF_INET)
      all &= (ntohl(((struct sockaddr_in *)a->ai_addr)->sin_addr.s_addr) >>
              24) == 127;
    else if (a->ai_family == AF_INET6)
      all &= IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr);
    else
      all = 0;
  }
  freeaddrinfo(list);
  return all;
}
