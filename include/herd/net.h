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

#ifdef __cplusplus
}
#endif
#endif
