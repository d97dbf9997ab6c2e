/* herd's release and wire-protocol versions. */
#ifndef HERD_VERSION_H
#define HERD_VERSION_H

#define HERD_VERSION "0.1.0"
#define HERD_PROTOCOL_VERSION 1

#endif
