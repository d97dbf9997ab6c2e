/* The coordinator's HTTP server: /metrics, /status, /healthz and /.
 *
 * libmicrohttpd runs it on its own thread (internal polling), so a slow or
 * hostile client never touches the ROUTER thread: a request takes
 * coord->lock only for coord_snapshot_take's copy and renders outside it.
 * The server is read-only: GET and HEAD (libmicrohttpd drops HEAD's body),
 * anything else is 405 with an Allow header. It binds where it is told,
 * 127.0.0.1 by default (the launcher's --http); exposing it takes an
 * explicit 0.0.0.0. Exposed (bound beyond loopback), /status, which names
 * hosts and pids, needs `Authorization: Bearer <job token>` (401
 * otherwise; the page takes the token from its URL's #token=...), while
 * /metrics stays readable, as Prometheus expects, and names no pids.
 * Connections are capped and time out, so a pile of idle sockets cannot
 * exhaust the process.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "coord_internal.h"
#include "herd/herd.h"

#define COORD_HTTP_CONNECTIONS 64
#define COORD_HTTP_TIMEOUT_S 10

#if MHD_VERSION < 0x00097002
typedef int s_mhd_result_t;
#else
typedef enum MHD_Result s_mhd_result_t;
#endif

struct coord_http {
  herd_coord_t *coord;
  struct MHD_Daemon *daemon;
  char url[300];
  int exposed; /* bound beyond loopback: /status needs the bearer token */
};

/* ---- address ------------------------------------------------------------ */

/* Splits "host:port" / "[v6]:port" into host and port text. */
static herd_result_t s_split(const char *text, char *host, size_t host_cap,
                             const char **port)
{
  const char *colon = strrchr(text, ':');
  if (!colon || colon == text || !colon[1])
    return herd_error_set(HERD_EINVAL, "--http '%s': expected ADDR:PORT", text);
  const char *start = text, *end = colon;
  if (text[0] == '[' && colon[-1] == ']') {
    start = text + 1;
    end = colon - 1;
  }
  if ((size_t)(end - start) >= host_cap || end == start)
    return herd_error_set(HERD_EINVAL, "--http '%s': bad address", text);
  memcpy(host, start, (size_t)(end - start));
  host[end - start] = '\0';
  *port = colon + 1;
  return HERD_OK;
}

herd_result_t coord_http_parse_address(const char *text, void *sockaddr_out,
                                       size_t cap, size_t *len_out)
{
  char host[256];
  const char *port = NULL;
  if (!text)
    return herd_error_set(HERD_EINVAL, "no --http address");
  HERD_CHECK(s_split(text, host, sizeof host, &port));
  char *end = NULL;
  long number = strtol(port, &end, 10);
  if (*end || number < 0 || number > 65535)
    return herd_error_set(HERD_EINVAL, "--http '%s': bad port", text);
  struct addrinfo hints = {0}, *found = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  if (!strcmp(host, "localhost"))
    snprintf(host, sizeof host, "127.0.0.1");
  if (getaddrinfo(host, port, &hints, &found) != 0 || !found)
    return herd_error_set(HERD_EINVAL,
                          "--http '%s': not a numeric IPv4/IPv6 address", text);
  herd_result_t rc = HERD_OK;
  if (found->ai_addrlen > cap)
    rc = herd_error_set(HERD_EINVAL, "--http '%s': address too long", text);
  else {
    memcpy(sockaddr_out, found->ai_addr, found->ai_addrlen);
    *len_out = found->ai_addrlen;
  }
  freeaddrinfo(found);
  return rc;
}

/* ---- requests ------------------------------------------------------------ */

static s_mhd_result_t s_reply(struct MHD_Connection *connection,
                              unsigned status, const char *type, char *body)
{
  struct MHD_Response *response = MHD_create_response_from_buffer(
      strlen(body), body, MHD_RESPMEM_MUST_FREE);
  if (!response) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(response, "Content-Type", type);
  MHD_add_response_header(response, "Cache-Control", "no-store");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header(response, "Allow", "GET, HEAD");
  s_mhd_result_t ret = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return ret;
}

static s_mhd_result_t s_reply_text(struct MHD_Connection *connection,
                                   unsigned status, const char *text)
{
  char *body = strdup(text);
  if (!body)
    return MHD_NO;
  return s_reply(connection, status, "text/plain; charset=utf-8", body);
}

/* /metrics and /status: snapshot under the lock, render outside it. */
static s_mhd_result_t s_reply_snapshot(struct coord_http *http,
                                       struct MHD_Connection *connection,
                                       int status_json)
{
  coord_snapshot_t *snap = NULL;
  if (coord_snapshot_take(http->coord, status_json, &snap) != HERD_OK)
    return s_reply_text(connection, 500, "out of memory\n");
  char *body =
      status_json ? coord_status_render(snap) : coord_metrics_render(snap);
  coord_snapshot_free(&snap);
  if (!body)
    return s_reply_text(connection, 500, "out of memory\n");
  return s_reply(connection, MHD_HTTP_OK,
                 status_json ? "application/json"
                             : "text/plain; version=0.0.4; charset=utf-8",
                 body);
}

/* /timeline?after=SEQ: the kept events newer than SEQ (the page polls). */
static s_mhd_result_t s_reply_timeline(struct coord_http *http,
                                       struct MHD_Connection *connection)
{
  const char *after_text =
      MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "after");
  char *end = NULL;
  long long after = after_text ? strtoll(after_text, &end, 10) : 0;
  if (after_text && (end == after_text || *end || after < 0))
    return s_reply_text(connection, MHD_HTTP_BAD_REQUEST,
                        "after: a sequence number (0 or more)\n");
  pthread_mutex_lock(&http->coord->lock);
  char *body = coord_timeline_render(http->coord->timeline, after);
  pthread_mutex_unlock(&http->coord->lock);
  if (!body)
    return s_reply_text(connection, 500, "out of memory\n");
  return s_reply(connection, MHD_HTTP_OK, "application/json", body);
}

/* Whether the request carries "Authorization: Bearer <job token>". */
static int s_bearer_ok(struct coord_http *http,
                       struct MHD_Connection *connection)
{
  const char *auth = MHD_lookup_connection_value(
      connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  return auth && !strncmp(auth, "Bearer ", 7) &&
         coord_codec_token_equal(auth + 7, http->coord->token);
}

static s_mhd_result_t s_unauthorized(struct MHD_Connection *connection)
{
  char *body = strdup("this coordinator's HTTP server is exposed: /status "
                      "needs 'Authorization: Bearer <job token>'\n");
  if (!body)
    return MHD_NO;
  struct MHD_Response *response = MHD_create_response_from_buffer(
      strlen(body), body, MHD_RESPMEM_MUST_FREE);
  if (!response) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                          "text/plain; charset=utf-8");
  MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                          "Bearer realm=\"herd\"");
  s_mhd_result_t ret =
      MHD_queue_response(connection, MHD_HTTP_UNAUTHORIZED, response);
  MHD_destroy_response(response);
  return ret;
}

static s_mhd_result_t s_route(struct coord_http *http,
                              struct MHD_Connection *connection,
                              const char *url)
{
  if (!strcmp(url, "/metrics"))
    return s_reply_snapshot(http, connection, 0);
  if (!strcmp(url, "/status") || !strcmp(url, "/timeline")) {
    if (http->exposed && !s_bearer_ok(http, connection))
      return s_unauthorized(connection);
    return url[1] == 's' ? s_reply_snapshot(http, connection, 1)
                         : s_reply_timeline(http, connection);
  }
  if (!strcmp(url, "/healthz"))
    return s_reply_text(connection, MHD_HTTP_OK, "ok\n");
  if (!strcmp(url, "/") || !strcmp(url, "/index.html")) {
    char *page = coord_page_render(NULL);
    if (!page)
      return MHD_NO;
    return s_reply(connection, MHD_HTTP_OK, "text/html; charset=utf-8", page);
  }
  return s_reply_text(connection, MHD_HTTP_NOT_FOUND, "not found\n");
}

static s_mhd_result_t s_on_request(void *cls, struct MHD_Connection *connection,
                                   const char *url, const char *method,
                                   const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **state)
{
  static int s_first_call_marker;
  if (*state == NULL) {
    /* First call: headers only. Answer on the second, after any body. */
    *state = &s_first_call_marker;
    return MHD_YES;
  }
  if (*upload_data_size) {
    *upload_data_size = 0; /* a body is read and dropped: 405 follows */
    return MHD_YES;
  }
  if (strcmp(method, "GET") && strcmp(method, "HEAD"))
    return s_reply_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED,
                        "read-only: GET or HEAD\n");
  return s_route(cls, connection, url);
}

/* ---- lifecycle ------------------------------------------------------------
 */

static int s_is_loopback(const struct sockaddr *addr)
{
  if (addr->sa_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr) >>
            24) == 127;
  return addr->sa_family == AF_INET6 &&
         IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)addr)->sin6_addr);
}

static void s_make_url(struct coord_http *http, const struct sockaddr *addr)
{
  char host[INET6_ADDRSTRLEN] = "127.0.0.1";
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_BIND_PORT);
  unsigned port = info ? info->port : 0;
  int v6 = addr->sa_family == AF_INET6;
  if (v6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, host,
              sizeof host);
  else
    inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, host,
              sizeof host);
  /* A wildcard bind is reachable on loopback; name that in the URL. */
  if (!strcmp(host, "0.0.0.0"))
    snprintf(host, sizeof host, "127.0.0.1");
  else if (!strcmp(host, "::"))
    snprintf(host, sizeof host, "::1");
  snprintf(http->url, sizeof http->url,
           v6 ? "http://[%s]:%u/" : "http://%s:%u/", host, port);
}

herd_result_t coord_http_start(herd_coord_t *coord, const char *address,
                               struct coord_http **out)
{
  struct sockaddr_storage addr;
  size_t addr_len = 0;
  *out = NULL;
  HERD_CHECK(coord_http_parse_address(address, &addr, sizeof addr, &addr_len));
  struct coord_http *http = calloc(1, sizeof *http);
  if (!http)
    return HERD_ENOMEM;
  http->coord = coord;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD; /* no stderr: a library */
  if (addr.ss_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  http->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, s_on_request, http, MHD_OPTION_SOCK_ADDR,
      (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
      (unsigned)COORD_HTTP_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)COORD_HTTP_TIMEOUT_S, MHD_OPTION_END);
  if (!http->daemon) {
    free(http);
    return herd_error_set(HERD_EIO, "cannot serve HTTP on %s (port busy?)",
                          address);
  }
  s_make_url(http, (struct sockaddr *)&addr);
  http->exposed = !s_is_loopback((struct sockaddr *)&addr);
  HERD_LOG(HERD_LOG_INFO, COORD_LOG, "monitoring on %s", http->url);
  *out = http;
  return HERD_OK;
}

void coord_http_stop(struct coord_http **http_p)
{
  if (!http_p || !*http_p)
    return;
  MHD_stop_daemon((*http_p)->daemon);
  free(*http_p);
  *http_p = NULL;
}

const char *coord_http_url(const struct coord_http *http)
{
  return http ? http->url : NULL;
}
