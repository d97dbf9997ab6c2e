/* Addresses between hosts: which local address a process advertises.
 *
 * herd is multi-host first (DESIGN.md, "Hosts, addresses and ports"): every
 * address a process hands to its peers (Gloo pairs, NCCL bootstrap, the
 * coordinator endpoint `herd run` exports) is the address of the interface
 * that routes toward the other side, unless the user names an interface
 * (--iface / HERD_IFACE, like NCCL_SOCKET_IFNAME). Loopback comes out only
 * when the other side is this host.
 *
 * All functions are thread-safe and never print; they fill caller buffers
 * (at least HERD_NET_ADDR_MAX bytes for an address).
 */
#ifndef HERD_NET_H
#define HERD_NET_H

#include <stddef.h>
#include <stdint.h>

#include "herd/result.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HERD_NET_ADDR_MAX 64  /* a numeric IPv4/IPv6 address and its NUL */
#define HERD_NET_HOST_MAX 256 /* a host name and its NUL */

/* Splits "tcp://HOST:PORT" (HOST may be "[v6]") into host and port.
 * HERD_EINVAL names the endpoint when it has another shape. */
herd_result_t herd_net_split_endpoint(const char *endpoint, char *host,
                                      size_t host_cap, int *port);

/* The local address to advertise to peers: the first address of interface
 * `iface` when one is named (HERD_ENOENT naming the interfaces there are
 * when it has none), else the local address of the route toward `peer` (a
 * host name, address or tcp:// endpoint; nothing is sent). HERD_ENOENT when
 * `peer` does not resolve. */
herd_result_t herd_net_advertise_addr(const char *iface, const char *peer,
                                      char *out, size_t cap);

/* The interface holding local address `addr` (for NCCL_SOCKET_IFNAME), and
 * its network in CIDR form ("10.0.0.0/24", for mpirun's *_if_include).
 * HERD_ENOENT when no local interface holds it. */
herd_result_t herd_net_iface_of(const char *addr, char *iface, size_t cap);
herd_result_t herd_net_cidr_of(const char *addr, char *cidr, size_t cap);

/* This host's first non-loopback address of an interface that is up (IPv4
 * first), for a service bound to every interface; loopback when there is
 * none. Never fails. */
void herd_net_any_addr(char *out, size_t cap);

/* "tcp://HOST:PORT", with brackets around an IPv6 HOST. */
void herd_net_format_endpoint(const char *host, int port, char *out,
                              size_t cap);

/* 1 when `host` (name or address) resolves to a loopback or local
 * address of this machine, 0 when not or when it does not resolve. */
int herd_net_is_local(const char *host);
/* 1 when every address `host` resolves to is a loopback one (127.0.0.0/8,
 * ::1): a service bound there cannot be reached from another host. 0 for
 * wildcards (0.0.0.0, ::), other addresses, and names that do not
 * resolve. */
int herd_net_is_loopback(const char *host);

/* ---- link rates (common/net_links.c) ------------------------------------ */

#define HERD_NET_LINKS_MAX 64
#define HERD_NET_LINK_MIN_BYTES (256 * 1024) /* less says nothing of a link */

/* One TCP connection's counters at one moment. */
typedef struct {
  uint64_t inode; /* identifies the connection between samples */
  char peer[HERD_NET_ADDR_MAX];
  uint64_t bytes_acked, busy_us;
} herd_net_link_t;

/* What a peer's connections delivered between two samples. */
typedef struct {
  char peer[HERD_NET_ADDR_MAX];
  double mbps; /* Mbit/s while data was in flight */
} herd_net_link_rate_t;

/* Fills out[] with this process's established TCP connections (at most
 * max); returns how many. Never fails: 0 when none can be read. */
int herd_net_links_sample(herd_net_link_t *out, int max);

/* Rates per peer address between two samples, only peers that moved at
 * least HERD_NET_LINK_MIN_BYTES; returns how many were written to out. */
int herd_net_links_rates(const herd_net_link_t *before, int n_before,
                         const herd_net_link_t *now, int n_now,
                         herd_net_link_rate_t *out, int max);

#ifdef __cplusplus
}
#endif
#endif
