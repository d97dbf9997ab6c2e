#!/usr/bin/env bash
# A throw-away single-node Slurm cluster on this machine, for herd's system
# tests and for trying slurm/train.sbatch locally. Needs root and Debian's
# slurmd, slurmctld, slurm-client and munge packages.
#
#   slurm/test-cluster.sh start STATE_DIR   # munged + slurmctld + slurmd
#   export SLURM_CONF=STATE_DIR/slurm.conf  # then srun/sbatch/squeue work
#   slurm/test-cluster.sh stop STATE_DIR    # stops exactly what start started
#
# Everything lives under STATE_DIR (config, munge key and socket, spool,
# logs, pid files); the daemons listen on localhost ports (CTLD_PORT,
# SLURMD_PORT, default 16817/16818). `start` waits (bounded) until the node
# is idle and exits non-zero, printing the daemons' logs, if it never is.
#
# NODES=N (N > 1): N Slurm nodes node1..nodeN on this one machine, one slurmd
# each (`slurmd -N nodeI`; Debian's slurm-wlm is built with
# --enable-multiple-slurmd: `scontrol show config` says MULTIPLE_SLURMD = Yes).
# Every node is NodeAddr 127.0.0.1 with its own port SLURMD_PORT + I - 1, its
# own spool, log and pid file (%n), and its own TmpFS (%n): the PMIx plugin
# makes its client folder TmpFS/spmix_appdir_UID_JOB.STEP, which would
# collide between the nodes of one step in a shared /tmp. Each node gets the
# machine's CPU count and 1/N of its memory. `stop` stops every slurmd
# that `start` started, whatever NODES says. The single node's TmpFS is in
# STATE_DIR too (never /tmp, where an earlier cluster's folders linger).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
action=${1:?usage: test-cluster.sh start|stop STATE_DIR}
state=${2:?usage: test-cluster.sh start|stop STATE_DIR}
ctld_port=${CTLD_PORT:-16817}
slurmd_port=${SLURMD_PORT:-16818}
nodes=${NODES:-1}

log() { echo "test-cluster: $*" >&2; }

# Stops the daemon whose pid file is $1 (only that pid), bounded.
stop_pidfile() {
  local f=$1 pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  rm -f "$f"
}

stop() {
  local f
  for f in "$state"/slurmd.pid "$state"/slurmd-node*.pid; do stop_pidfile "$f"; done
  stop_pidfile "$state/slurmctld.pid"
  stop_pidfile "$state/munge/munged.pid"
}

write_config() {
  local cpus mem_mb
  cpus=$(nproc --all)
  mem_mb=$(awk '/^MemTotal:/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)
  mkdir -p "$state/ctld" "$state/slurmd" "$state/munge"
  sed -e "s|@STATE@|$state|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEM_MB@|$mem_mb|g" \
      -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@SLURMD_PORT@|$slurmd_port|g" \
      -e "s|@SRUN_PORTS@|$((slurmd_port + 100))-$((slurmd_port + 200))|g" \
      "$here/slurm.conf.in" > "$state/slurm.conf"
  cp "$here/cgroup.conf" "$state/cgroup.conf"
  if [ "$nodes" -gt 1 ]; then
    multi_node_config "$cpus" "$((mem_mb / nodes))"
  else
    # The PMIx plugin's client folders (TmpFS/spmix_appdir_UID_JOB.STEP) in
    # this cluster's own state: a fresh cluster numbers its jobs from 1
    # again, and a folder left in /tmp by an earlier one would fail the
    # step ("File exists").
    mkdir -p "$state/tmp"
    echo "TmpFS=$state/tmp" >> "$state/slurm.conf"
  fi
}

# Rewrites slurm.conf for NODES slurmds on this machine (see the top).
multi_node_config() {
  local cpus=$1 mem_mb=$2 i
  sed -i -e '/^NodeName=/d' -e '/^PartitionName=/d' \
      -e "s|^SlurmdSpoolDir=.*|SlurmdSpoolDir=$state/slurmd/%n|" \
      -e "s|^SlurmdPidFile=.*|SlurmdPidFile=$state/slurmd-%n.pid|" \
      -e "s|^SlurmdLogFile=.*|SlurmdLogFile=$state/slurmd-%n.log|" "$state/slurm.conf"
  {
    echo "# NODES=$nodes: one slurmd per node on this machine (slurmd -N nodeI)."
    echo "TmpFS=$state/tmp/%n"
    for i in $(seq 1 "$nodes"); do
      mkdir -p "$state/slurmd/node$i" "$state/tmp/node$i"
      echo "NodeName=node$i NodeHostname=localhost NodeAddr=127.0.0.1" \
           "Port=$((slurmd_port + i - 1)) CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN"
    done
    echo "PartitionName=herd Nodes=node[1-$nodes] Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES"
  } >> "$state/slurm.conf"
}

start_munge() {
  chmod 700 "$state/munge"
  [ -s "$state/munge/munge.key" ] ||
    dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$state/munge/munge.key"
  munged --force --socket="$state/munge/munge.socket.2" \
    --key-file="$state/munge/munge.key" --pid-file="$state/munge/munged.pid" \
    --log-file="$state/munge/munged.log" --seed-file="$state/munge/munged.seed"
}

# Waits until all nodes are idle: the cluster can run jobs.
wait_idle() {
  for _ in $(seq 1 100); do
    if [ "$(sinfo -h -N -o '%T' 2>/dev/null | grep -cx 'idle')" -ge "$nodes" ]; then return 0; fi
    sleep 0.3
  done
  return 1
}

start() {
  for cmd in munged slurmctld slurmd sinfo; do
    command -v "$cmd" >/dev/null || { log "$cmd not installed"; return 3; }
  done
  mkdir -p "$state"
  state=$(cd "$state" && pwd)
  write_config
  export SLURM_CONF="$state/slurm.conf"
  start_munge || { log "munged failed"; return 1; }
  slurmctld -c -f "$SLURM_CONF" || { log "slurmctld failed"; return 1; }
  if [ "$nodes" -gt 1 ]; then
    for i in $(seq 1 "$nodes"); do
      slurmd -f "$SLURM_CONF" -N "node$i" || { log "slurmd -N node$i failed"; return 1; }
    done
  else
    slurmd -f "$SLURM_CONF" || { log "slurmd failed"; return 1; }
  fi
  if ! wait_idle; then
    log "the nodes never all became idle; logs follow"
    sinfo -N -l >&2 || true
    tail -n 30 "$state"/slurmctld.log "$state"/slurmd*.log >&2 || true
    return 1
  fi
  log "up: export SLURM_CONF=$SLURM_CONF"
}

case $nodes in ''|*[!0-9]*|0) log "NODES must be a positive number, not '$nodes'"; exit 2 ;; esac
case $action in
  start) start ;;
  stop) state=$(cd "$state" 2>/dev/null && pwd) || exit 0; stop ;;
  *) log "unknown action $action"; exit 2 ;;
esac
