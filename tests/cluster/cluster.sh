#!/usr/bin/env bash
# cluster.sh — a cluster in a box for the herd test suite.
#
# Multi-host code paths (address advertising, name resolution, host death,
# cut cables, slow links) need several hosts.  We fake them on one machine:
#
#   root netns:  bridge hc<ID>br (no IP address: nothing can leave the box)
#                  |-- hc<ID>v0 ==veth== eth0 in netns hc<ID>-<host0>  10.250.<ID>.1/24
#                  |-- hc<ID>v1 ==veth== eth0 in netns hc<ID>-<host1>  10.250.<ID>.2/24
#                  ...
#
# Each host also has its own UTS namespace (so `hostname` differs per host),
# kept alive by a bind mount on /run/herd-cluster/uts-hc<ID>-<host>, and its
# own /etc/hosts (/etc/netns/hc<ID>-<host>/hosts, which `ip netns exec`
# bind-mounts over /etc/hosts) listing every host, so names resolve
# everywhere without DNS.  ID (1..250) is the third address octet and is part
# of every name, so tests using different IDs can run at the same time.
#
# Usage (as root):
#   source tests/cluster/cluster.sh
#   trap 'cluster_down 7' EXIT          # the library registers no trap itself
#   cluster_up 7 coord node1 node2
#   cluster_spawn 7 coord /tmp/coord.log herd coord ...; coord_pid=$CLUSTER_PID
#   cluster_exec 7 node1 getent hosts coord
#
# From a shell:  tests/cluster/cluster.sh down ID   (cleans up after a crash)
#
# Functions: cluster_up, cluster_alias, cluster_addr, cluster_host_of,
# cluster_exec, cluster_spawn, cluster_kill_host, cluster_link, cluster_cap,
# cluster_down.  All return non-zero with a message on stderr on failure and
# never change the caller's shell options, so they are safe under
# `set -euo pipefail` and without it.

HC_RUN=/run/herd-cluster
HC_NAME_RE='^[A-Za-z0-9]([A-Za-z0-9-]{0,62})$'

_hc_err() { printf 'cluster: %s\n' "$*" >&2; return 1; }

# Run a setup step; on failure say which one and why (never skip a step).
_hc_do() {
    local out
    if ! out=$("$@" 2>&1); then
        _hc_err "failed: $* ${out:+($out)}"
        return 1
    fi
}

_hc_check_id() {
    if [[ ${1-} =~ ^[0-9]{1,3}$ ]] && (( 10#$1 >= 1 && 10#$1 <= 250 )); then
        return 0
    fi
    _hc_err "cluster ID must be an integer 1..250, got '${1-}'"
}

_hc_need_root() {
    [[ $EUID -eq 0 ]] || _hc_err "must run as root (network namespaces, bridges)"
}

_hc_check_host() { # ID HOST: the host exists in that cluster
    _hc_check_id "${1-}" || return 1
    [[ ${2-} =~ $HC_NAME_RE ]] || { _hc_err "bad host name '${2-}'"; return 1; }
    local ns=hc$((10#$1))-$2
    [[ -e /run/netns/$ns && -e $HC_RUN/uts-$ns ]] || _hc_err "no host '$2' in cluster $1"
}

# The persistent-namespace bind mounts need a private mount point; a shared
# one makes unshare fail (EINVAL).  flock: concurrent tests set it up once.
_hc_uts_dir() {
    mkdir -p "$HC_RUN" || { _hc_err "cannot create $HC_RUN"; return 1; }
    (
        flock 9 || exit 1
        if ! mountpoint -q "$HC_RUN"; then
            mount --bind "$HC_RUN" "$HC_RUN" || exit 1
        fi
        mount --make-private "$HC_RUN"
    ) 9>"$HC_RUN.lock" || _hc_err "cannot make $HC_RUN a private mount"
}

# Kill every process in netns NS; wait (bounded) until they are gone so the
# caller really observes a dead host afterwards.
_hc_kill_ns() {
    local ns=$1 pids try
    for (( try = 0; try < 50; try++ )); do
        pids=$(ip netns pids "$ns" 2>/dev/null) || return 0
        [[ -z $pids ]] && return 0
        # shellcheck disable=SC2086  # one kill for all: they die together
        kill -9 $pids 2>/dev/null || true # some may have exited already
        sleep 0.1
    done
    _hc_err "processes still alive in $ns after kill -9: $pids"
}

cluster_up() { # ID HOST...
    local id=${1-}
    _hc_need_root && _hc_check_id "$id" || return 1
    shift
    (( $# >= 1 && $# <= 253 )) || { _hc_err "cluster_up needs 1..253 hosts"; return 1; }
    local h seen=" "
    for h in "$@"; do
        [[ $h =~ $HC_NAME_RE ]] || { _hc_err "bad host name '$h' (letters, digits, dash)"; return 1; }
        [[ $seen == *" $h "* ]] && { _hc_err "host '$h' given twice"; return 1; }
        seen+="$h "
    done
    id=$((10#$id))
    cluster_down "$id" || return 1 # leftovers of a crashed run with this ID
    if ! _hc_build "$id" "$@"; then
        cluster_down "$id" >/dev/null 2>&1 || true
        return 1
    fi
    export HERD_CLUSTER_ID=$id
}

_hc_build() {
    local id=$1 br=hc$1br i=0 h ns veth uts hosts
    shift
    _hc_uts_dir || return 1
    _hc_do ip link add "$br" type bridge || return 1
    _hc_do ip link set "$br" up || return 1
    hosts=$'127.0.0.1\tlocalhost\n'
    for h in "$@"; do
        ns=hc$id-$h veth=hc${id}v$i uts=$HC_RUN/uts-hc$id-$h
        _hc_do ip netns add "$ns" || return 1
        # Create the peer directly inside the netns: "eth0" may exist in root.
        _hc_do ip link add "$veth" type veth peer name eth0 netns "$ns" || return 1
        _hc_do ip link set "$veth" master "$br" up || return 1
        _hc_do ip -n "$ns" addr add "10.250.$id.$((i + 1))/24" dev eth0 || return 1
        _hc_do ip -n "$ns" link set eth0 up || return 1
        _hc_do ip -n "$ns" link set lo up || return 1
        _hc_do touch "$uts" || return 1
        _hc_do unshare --uts="$uts" hostname "$h" || return 1
        hosts+="10.250.$id.$((i + 1))"$'\t'"$h"$'\n'
        i=$((i + 1))
    done
    for h in "$@"; do
        _hc_do mkdir -p "/etc/netns/hc$id-$h" || return 1
        printf '%s' "$hosts" >"/etc/netns/hc$id-$h/hosts" || { _hc_err "cannot write hosts file"; return 1; }
        # No nameserver: lookups of unknown names fail at once on the host's
        # own loopback instead of trying the real resolver (which is
        # unreachable anyway) — nothing is sent outside the box.
        printf '# herd test cluster: no DNS\n' >"/etc/netns/hc$id-$h/resolv.conf" ||
            { _hc_err "cannot write resolv.conf"; return 1; }
    done
}

cluster_alias() { # ID HOST ALIAS...
    local id=${1-} host=${2-} a addr f
    _hc_check_host "$id" "$host" || return 1
    shift 2
    (( $# )) || { _hc_err "cluster_alias needs at least one alias"; return 1; }
    for a in "$@"; do
        [[ $a =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$ ]] || { _hc_err "bad alias '$a'"; return 1; }
    done
    addr=$(cluster_addr "$id" "$host") || return 1
    # Append in place: running processes see /etc/hosts through a bind
    # mount of this very inode, so a rewrite-and-rename would be invisible.
    for f in /etc/netns/hc"$((10#$id))"-*/hosts; do
        [[ -e $f ]] || continue
        printf '%s\t%s\n' "$addr" "$*" >>"$f" || { _hc_err "cannot append to $f"; return 1; }
    done
}

cluster_addr() { # ID HOST -> prints the IPv4 address
    local id=${1-} host=${2-} out
    _hc_check_host "$id" "$host" || return 1
    out=$(ip -n "hc$((10#$id))-$host" -4 -o addr show dev eth0 2>/dev/null) || out=
    [[ $out =~ inet\ ([0-9.]+)/ ]] || { _hc_err "no address on $host"; return 1; }
    printf '%s\n' "${BASH_REMATCH[1]}"
}

cluster_host_of() { # ID NAME|ADDRESS -> prints the host name (rsh-agent uses it)
    local id=${1-} name=${2-} f addr host
    _hc_check_id "$id" || return 1
    id=$((10#$id))
    for f in /etc/netns/hc"$id"-*/hosts; do break; done
    [[ -e $f ]] || { _hc_err "cluster $id is not up"; return 1; }
    addr=$name
    if [[ ! $name =~ ^[0-9.]+$ ]]; then
        addr=$(awk -v n="$name" '{ for (i = 2; i <= NF; i++) if ($i == n) { print $1; exit } }' "$f")
    fi
    # cluster_up writes one "address host" line per host before any alias.
    host=$(awk -v a="$addr" '$1 == a && a != "127.0.0.1" { print $2; exit }' "$f")
    [[ -n $host ]] || { _hc_err "'$name' is not a host of cluster $id"; return 1; }
    printf '%s\n' "$host"
}

cluster_exec() { # ID HOST CMD ARGS... (foreground; exit status passed through)
    local id=${1-} host=${2-}
    _hc_check_host "$id" "$host" || return 1
    shift 2
    (( $# )) || { _hc_err "cluster_exec needs a command"; return 1; }
    id=$((10#$id))
    nsenter --uts="$HC_RUN/uts-hc$id-$host" ip netns exec "hc$id-$host" "$@"
}

# Sets CLUSTER_PID rather than printing it: $(cluster_spawn ...) would run in
# a subshell and the pid would not be a child the caller can `wait` for.
# nsenter and `ip netns exec` both exec, so CLUSTER_PID is CMD itself.
# Returns only once the process has joined the host's netns: before that
# cluster_kill_host/cluster_down would not see it and it would survive them.
cluster_spawn() { # ID HOST LOGFILE CMD ARGS...  -> CLUSTER_PID
    local id=${1-} host=${2-} log=${3-}
    CLUSTER_PID=
    _hc_check_host "$id" "$host" || return 1
    shift 3
    (( $# )) || { _hc_err "cluster_spawn needs a command"; return 1; }
    : >"$log" || { _hc_err "cannot write log file '$log'"; return 1; }
    id=$((10#$id))
    nsenter --uts="$HC_RUN/uts-hc$id-$host" ip netns exec "hc$id-$host" "$@" \
        >"$log" 2>&1 </dev/null &
    # shellcheck disable=SC2034  # read by the caller
    CLUSTER_PID=$!
    _hc_wait_in_ns "$CLUSTER_PID" "hc$id-$host"
}

_hc_wait_in_ns() { # PID NS: bounded wait (5 s) until PID is in netns NS
    local want got n
    want=$(stat -L -c %i "/run/netns/$2") || return 1
    for (( n = 0; n < 250; n++ )); do
        # Gone (or a zombie) already: nothing left to wait for.
        got=$(readlink "/proc/$1/ns/net" 2>/dev/null) || return 0
        [[ $got == "net:[$want]" ]] && return 0
        sleep 0.02
    done
    _hc_err "pid $1 did not enter $2 within 5 s"
}

cluster_kill_host() { # ID HOST: kill -9 everything on the host, like a power cut
    _hc_check_host "${1-}" "${2-}" || return 1
    _hc_kill_ns "hc$((10#$1))-$2"
}

_hc_veth() { # ID HOST -> root-side veth name (index = last octet - 1)
    local addr
    addr=$(cluster_addr "$1" "$2") || return 1
    printf 'hc%dv%d\n' "$((10#$1))" "$(( ${addr##*.} - 1 ))"
}

cluster_link() { # ID HOST down|up: cut or reconnect the host's cable
    local veth
    [[ ${3-} == up || ${3-} == down ]] || { _hc_err "cluster_link: want up or down, got '${3-}'"; return 1; }
    veth=$(_hc_veth "${1-}" "${2-}") || return 1
    _hc_do ip link set "$veth" "$3"
}

# Token bucket on both ends of the host's veth: root side egress shapes
# traffic to the host, eth0 egress shapes traffic from it.  Burst = 4 ms of
# traffic (500 KB at 1000 Mbit/s): a bucket smaller than what arrives between
# two dequeue wakeups makes tbf undershoot at high rates.  The 64 KB floor
# lets a TSO-sized packet through at low rates.  MBIT 0 removes the cap.
cluster_cap() { # ID HOST MBIT
    local id=${1-} host=${2-} mbit=${3-} veth burst
    [[ $mbit =~ ^[0-9]{1,6}$ ]] || { _hc_err "cluster_cap: MBIT must be an integer, got '$mbit'"; return 1; }
    veth=$(_hc_veth "$id" "$host") || return 1
    id=$((10#$id)) mbit=$((10#$mbit))
    if (( mbit == 0 )); then
        tc qdisc del dev "$veth" root 2>/dev/null || true # none is fine
        tc -n "hc$id-$host" qdisc del dev eth0 root 2>/dev/null || true
        return 0
    fi
    burst=$(( mbit * 1000000 / 8 / 250 ))
    (( burst < 65536 )) && burst=65536
    _hc_do tc qdisc replace dev "$veth" root tbf rate "${mbit}mbit" burst "$burst" latency 100ms || return 1
    _hc_do tc -n "hc$id-$host" qdisc replace dev eth0 root tbf rate "${mbit}mbit" burst "$burst" latency 100ms
}

cluster_down() { # ID: remove every trace of the cluster; idempotent
    local id=${1-} nss ns f veth n rc=0
    _hc_need_root && _hc_check_id "$id" || return 1
    id=$((10#$id))
    nss=$(ip netns list 2>/dev/null | awk -v p="hc$id-" 'index($1, p) == 1 { print $1 }')
    for ns in $nss; do
        _hc_kill_ns "$ns" || rc=1
    done
    # Links before namespaces: deleting a namespace tears its veth pairs
    # down asynchronously, so they would linger (and race with us) for a
    # moment.  A link that vanished on its own by then is no error.
    for veth in $(ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
        [[ $veth =~ ^hc${id}v[0-9]+$ || $veth == "hc${id}br" ]] || continue
        ip link del "$veth" 2>/dev/null || ! ip link show "$veth" >/dev/null 2>&1 || rc=1
    done
    for ns in $nss; do
        ip netns del "$ns" 2>/dev/null || [[ ! -e /run/netns/$ns ]] || rc=1
    done
    for f in /etc/netns/hc"$id"-*; do
        [[ -e $f ]] && { rm -rf -- "$f" || rc=1; }
    done
    for f in "$HC_RUN"/uts-hc"$id"-*; do
        [[ -e $f ]] || continue
        # Bounded: a file could carry stacked mounts after odd crashes.
        for (( n = 0; n < 5; n++ )); do
            findmnt -rn --mountpoint "$f" >/dev/null 2>&1 || break
            umount "$f" 2>/dev/null || umount -l "$f" 2>/dev/null || break
        done
        rm -f -- "$f" || rc=1
    done
    (( rc == 0 )) || _hc_err "cluster_down $id: some pieces could not be removed"
}

# Runnable as a command for manual cleanup: cluster.sh down ID
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    case ${1-} in
        down) cluster_down "${2-}" ;;
        *) echo "usage: $0 down ID" >&2; exit 2 ;;
    esac
fi
