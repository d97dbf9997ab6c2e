#!/usr/bin/env bash
# shellcheck disable=SC2016  # single-quoted $(...) must reach the hosts unexpanded
# selftest.sh — checks the cluster in a box (cluster.sh, rsh-agent) really
# gives separate hosts: own hostnames, names resolving everywhere, TCP
# between hosts, cut cables, bandwidth caps, host death, and a clean
# teardown.  Exit 0 = pass, anything else = fail; it never skips (needs root,
# python3 and Open MPI's mpirun).  Every wait is bounded by `timeout`, a
# socket timeout or a retry count.
set -euo pipefail

here=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
# shellcheck source=cluster.sh
source "$here/cluster.sh"

ID=1
tmp=$(mktemp -d /tmp/herd-cluster-selftest.XXXXXX)
trap 'cluster_down $ID || true; rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

[[ $EUID -eq 0 ]] || fail "must run as root"
command -v python3 >/dev/null || fail "python3 not found"
command -v mpirun >/dev/null || fail "mpirun not found"

# TCP sink: serves COUNT connections, answers each with the byte count read.
cat >"$tmp/sink.py" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
s.settimeout(60)
for _ in range(int(sys.argv[3])):
    c, _ = s.accept()
    c.settimeout(60)
    n = 0
    while True:
        b = c.recv(1 << 16)
        if not b:
            break
        n += len(b)
    c.sendall(str(n).encode())
    c.close()
EOF
# Client: HOST PORT MIB TRIES; prints the seconds from first byte sent to
# the sink's acknowledgement (so bytes still queued in buffers are counted).
cat >"$tmp/send.py" <<'EOF'
import socket, sys, time
host, port, mib, tries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for _ in range(tries):
    try:
        c = socket.create_connection((host, port), timeout=2)
        break
    except OSError as e:
        err = e
        time.sleep(0.1)
else:
    sys.exit(f"connect to {host}:{port} failed: {err}")
c.settimeout(60)
buf = b"x" * (1 << 20)
t = time.monotonic()
for _ in range(mib):
    c.sendall(buf)
c.shutdown(socket.SHUT_WR)
ack = c.recv(64)
dt = time.monotonic() - t
if int(ack) != mib << 20:
    sys.exit(f"sink got {ack!r} bytes, sent {mib << 20}")
print(f"{dt:.4f}")
EOF
send() { # FROM TO PORT MIB TRIES -> seconds
    cluster_exec $ID "$1" timeout 60 python3 "$tmp/send.py" "$2" "$3" "$4" "$5"
}
mbit() { python3 -c "import sys; print(int($1 * 8 * 1.048576 / $2))"; }

# --- argument checks and recovery from a crashed run -------------------------
! cluster_up 0 a 2>/dev/null || fail "cluster_up accepted ID 0"
! cluster_up $ID 'bad name' 2>/dev/null || fail "cluster_up accepted a bad host name"
cluster_up $ID stale1 stale2 || fail "cluster_up (stale) failed"
# Not torn down on purpose: the next cluster_up must clear these leftovers.
root_hostname=$(hostname)
cluster_up $ID node1 node2 node3 || fail "cluster_up failed"
ip netns list | grep "^hc$ID-stale" >/dev/null && fail "cluster_up left a previous run's namespaces"
[[ ${HERD_CLUSTER_ID-} == "$ID" ]] || fail "HERD_CLUSTER_ID not exported"
ok "cluster_up validates arguments and clears leftovers"

# --- hostnames ---------------------------------------------------------------
for h in node1 node2 node3; do
    got=$(cluster_exec $ID $h hostname) || fail "hostname on $h failed"
    [[ $got == "$h" ]] || fail "hostname on $h is '$got'"
done
[[ $(hostname) == "$root_hostname" ]] || fail "root hostname changed"
ok "each host has its own hostname"

# --- argv passes through untouched, exit status too --------------------------
got=$(cluster_exec $ID node1 printf '%s|' 'a b' '$(echo x)' '*') || fail "cluster_exec printf failed"
[[ $got == 'a b|$(echo x)|*|' ]] || fail "cluster_exec mangled its arguments: '$got'"
rc=0; cluster_exec $ID node1 sh -c 'exit 7' || rc=$?
(( rc == 7 )) || fail "cluster_exec exit status $rc, want 7"
ok "cluster_exec passes argv and exit status"

# --- name resolution ---------------------------------------------------------
for h in node1 node2 node3; do
    for peer in node1 node2 node3; do
        want=$(cluster_addr $ID $peer)
        got=$(cluster_exec $ID $h getent hosts $peer | awk '{ print $1 }') || fail "getent $peer on $h failed"
        [[ $got == "$want" ]] || fail "$peer resolves to '$got' on $h, want $want"
    done
done
[[ $(cluster_addr $ID node1) == 10.250.$ID.1 ]] || fail "first host is not .1"
cluster_alias $ID node1 herd-coord herd-coord.default.svc
for h in node1 node2 node3; do
    got=$(cluster_exec $ID $h getent hosts herd-coord.default.svc | awk '{ print $1 }') || fail "alias lookup on $h failed"
    [[ $got == "10.250.$ID.1" ]] || fail "alias resolves to '$got' on $h"
done
ok "names and aliases resolve on every host"

# --- TCP between hosts, cut cable --------------------------------------------
cluster_spawn $ID node2 "$tmp/sink2.log" timeout 120 python3 "$tmp/sink.py" 10.250.$ID.2 5001 10
send node1 node2 5001 1 50 >/dev/null || fail "TCP node1 -> node2 failed: $(cat "$tmp/sink2.log")"
ok "TCP works between hosts"
cluster_link $ID node2 down
if send node1 node2 5001 1 1 >/dev/null 2>&1; then fail "connect succeeded over a cut link"; fi
cluster_link $ID node2 up
send node1 node2 5001 1 50 >/dev/null || fail "TCP did not come back after cluster_link up"
ok "cluster_link down cuts the host off, up restores it"

# --- bandwidth caps ----------------------------------------------------------
MIB=20
free=$(send node1 node2 5001 $MIB 50) || fail "uncapped transfer failed"
cluster_cap $ID node2 100
capped=$(send node1 node2 5001 $MIB 50) || fail "transfer capped at 100 Mbit/s failed"
cluster_cap $ID node2 1000
capped1g=$(send node1 node2 5001 $MIB 50) || fail "transfer capped at 1000 Mbit/s failed"
cluster_cap $ID node2 0
cluster_cap $ID node1 100 # the sender's side: traffic leaving a capped host
capped_out=$(send node1 node2 5001 $MIB 50) || fail "transfer from capped host failed"
cluster_cap $ID node1 0
r_free=$(mbit $MIB "$free") r100=$(mbit $MIB "$capped") r1g=$(mbit $MIB "$capped1g") r_out=$(mbit $MIB "$capped_out")
echo "   uncapped ${r_free} Mbit/s, cap 100: ${r100} (to host) ${r_out} (from host), cap 1000: ${r1g}"
(( r100 >= 50 && r100 <= 110 )) || fail "cap 100 Mbit/s gave $r100 Mbit/s (to host)"
(( r_out >= 50 && r_out <= 110 )) || fail "cap 100 Mbit/s gave $r_out Mbit/s (from host)"
(( r1g <= 1100 )) || fail "cap 1000 Mbit/s gave $r1g Mbit/s"
# The 1000 Mbit/s cap must not choke the link far below its rate either
# (a too small burst does); judge it only where the box itself is fast.
if (( r_free >= 3000 )); then
    (( r1g >= 400 )) || fail "cap 1000 Mbit/s gave only $r1g Mbit/s"
fi
(( r_free >= 3 * r100 )) || fail "uncapped ($r_free Mbit/s) not clearly faster than capped ($r100)"
ok "cluster_cap limits throughput both ways"

# --- rsh-agent and mpirun across hosts ---------------------------------------
got=$("$here/rsh-agent" -x -o BatchMode=yes root@node3 echo '$(hostname)') || fail "rsh-agent failed"
[[ $got == node3 ]] || fail "rsh-agent ran on '$got', want node3"
got=$(cluster_exec $ID node1 timeout 60 mpirun --allow-run-as-root \
    --mca plm_rsh_agent "$here/rsh-agent" --mca btl self,tcp \
    --mca btl_tcp_if_include 10.250.$ID.0/24 --mca oob_tcp_if_include 10.250.$ID.0/24 \
    -H node2:1,node3:1 hostname 2>"$tmp/mpirun.err" | sort | tr '\n' ' ') ||
    fail "mpirun across hosts failed: $(cat "$tmp/mpirun.err")"
[[ $got == 'node2 node3 ' ]] || fail "mpirun ran on '$got'"
ok "rsh-agent and mpirun reach the hosts"

# --- host death --------------------------------------------------------------
cluster_spawn $ID node3 "$tmp/sleep.log" sleep 300
victim=$CLUSTER_PID
kill -0 "$victim" || fail "spawned sleep is not running"
cluster_kill_host $ID node3
# Our child: once dead it stays a zombie until we wait for it.
state=$(ps -o stat= -p "$victim" || true)
[[ -z $state || $state == Z* ]] || fail "process survived cluster_kill_host (state $state)"
rc=0; wait "$victim" 2>/dev/null || rc=$?
(( rc == 137 )) || fail "killed process exit status $rc, want 137 (SIGKILL)"
[[ -z $(ip netns pids hc$ID-node3) ]] || fail "processes left on node3"
got=$(cluster_exec $ID node2 hostname) || fail "node2 died with node3"
ok "cluster_kill_host kills everything on the host, only there"

# --- teardown leaves nothing -------------------------------------------------
cluster_down $ID || fail "cluster_down failed"
cluster_down $ID || fail "cluster_down is not idempotent"
"$here/cluster.sh" down $ID || fail "cluster.sh down failed"
ip netns list | grep "^hc$ID-" >/dev/null && fail "namespaces left: $(ip netns list)"
ip -o link show | grep -E ": hc$ID(br|v[0-9]+)[@:]" >/dev/null && fail "links left: $(ip -o link show | grep hc$ID)"
compgen -G "/etc/netns/hc$ID-*" >/dev/null && fail "/etc/netns entries left"
compgen -G "$HC_RUN/uts-hc$ID-*" >/dev/null && fail "UTS files left"
findmnt -rn | grep "uts-hc$ID-" >/dev/null && fail "UTS mounts left"
ok "cluster_down leaves nothing behind"
echo "PASS"
