#!/usr/bin/python3
"""bench/chaos: a seeded chaos soak of one elastic herd job (issue 13).

  chaos.py [--seed S] [--duration SECONDS] [--epochs E] [--baseline ACC |
           --baseline-file FILE] [--out-dir DIR] [--json FILE] ...

Layout (standalone, so that every fault kind is possible): one
`herd coord --port P --run-dir RUN --min 2 --max 4` (HERD_TOKEN=T) and four
`herd-train --data DATA --epochs E --seed 7 --ckpt-dir RUN/ckpt
--ckpt-every 50` started here with HERD_COORD / HERD_TOKEN / HERD_RANK /
HERD_WORLD_SIZE=4 / HERD_BACKEND=gloo. As root the job spans hosts: the
multi-host test cluster (tests/cluster/cluster.sh, ID 40) gives the
coordinator a host of its own ("coord", `--bind` its address, CURVE as
beyond loopback) and the workers two more (slots 0-1 on node1, 2-3 on
node2; --hosts N for another count); --no-cluster keeps everything on
loopback and leaves linkdown out. This script is their supervisor: a
worker that dies (killed here, or exiting non-zero) is started again in its
slot after a delay and rejoins as a newcomer (at most --max-restarts times);
a killed coordinator is started again with the same port, token and run dir
and adopts the running workers. herd and herd-train are copied into
OUT_DIR/bin first (waiting for a rebuild to finish), so that the whole soak
runs one build.

Faults (the schedule is drawn from --seed before anything starts and is
printed; times are seconds after the first committed step):
  kill1     kill -9 of one member; restarted after 1-3 s
  kill2     kill -9 of two members at once; restarted after 1-3 s
  stop      SIGSTOP of one member, SIGCONT after 2-10 s
  hog       a busy loop on every core for 2-6 s (each loop ends itself)
  coord     kill -9 of the coordinator, restarted after 1-4 s
  diskfull  the checkpoint dir (a 32 MiB tmpfs) filled for 5-12 s; needs
            root to mount, otherwise left out of the schedule
  linkdown  a worker host's cable out for 2-6 s (`ip link set ... down` on
            its veth): its members fall silent, are failed for it when the
            silence passes their deadline and rejoin as newcomers when the
            link is back; cluster only
Kinds are drawn from shuffled bags (each bag holds every kind once), so a
soak of six faults or more has every kind. A fault waits (up to 20 s past
its time) for a whole, training job: four live members and the
coordinator up; it is skipped when it would leave fewer than --min live
members, once --duration has passed, after 90 % of the steps, or when the
job (at its rate so far) would end within the fault's hold + 10 s (the
end of the job is left clean: a dead coordinator would miss it, a full
disk would fail the final checkpoint). Victims are members of the
current generation (rank -> pid from events.jsonl member_joined /
member_adopted), chosen by the fault's drawn `pick`.

Report (JSON --json, text summary on stdout and beside it):
  * faults injected and skipped, by kind;
  * detections: member_failed events by their "signal" (connection_closed,
    child_exit, peer_report, heartbeat_silence, watchdog; parsed from
    "reason" when the field is missing), and the time from each kill / stop
    to its member_failed;
  * false failures: member_failed of a pid that was neither killed nor
    stopped nor cut off at that time (a stopped worker failed as hung is
    a true detection: its window runs from SIGSTOP to 10 s after SIGCONT;
    a cut-off one's from the cut to 10 s after the link is back);
  * steps redone: per generation, the highest step committed by earlier
    generations minus the step the generation started from (workers' logs:
    "joined generation G at step S", "generation G lost a member ...
    discarding step N");
  * exactly once: committed steps 1..final each once, generations never
    going back, and every sample of every epoch in exactly one committed
    step (as tests/cluster/job_check.py);
  * checkpoints committed, checkpoint saves that failed, `herd ckpt verify`;
  * ETTR: wall time of kept steps / wall time from the first generation to
    the last step. A kept step's time is the gap to the previous committed
    step when that one is of the same generation, else the median gap;
  * final test accuracy against a fault-free run of the same layout, seed
    and epochs (run here, or --baseline ACC, or cached in --baseline-file).
Exit status: 0 when there are no false failures, exactly-once holds, the
job finished ok, `herd ckpt verify` passes and the accuracy is within 0.5
points of the baseline; 1 naming what failed; 2 bad usage or no build;
130 interrupted. Every wait is bounded; every process started here is
killed on exit (also on Ctrl-C / SIGTERM), only by its own pid.
"""
import argparse
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KINDS = ["kill1", "kill2", "stop", "hog", "coord", "diskfull", "linkdown"]
SIGNALS = ["connection_closed", "child_exit", "peer_report",
           "heartbeat_silence", "watchdog"]
STOP_GRACE_S = 10.0      # a stopped worker may still be failed this long after SIGCONT
WAIT_HEALTHY_S = 20.0    # how long a due fault waits for a whole job
TMPFS_BYTES = 32 << 20
BATCH = 128


def log(msg):
    print(f"chaos: {msg}", flush=True)


class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


class JsonlTail:
    """Whole lines appended to a JSON-lines file, read incrementally."""

    def __init__(self, path):
        self.path, self.offset, self.partial = path, 0, b""

    def read(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


# ---- the fault schedule ------------------------------------------------------

def draw_schedule(seed, duration, kinds):
    """Faults at seconds after the first committed step, all drawn up front."""
    rng = random.Random(seed)
    faults, bag = [], []
    t = rng.uniform(8, 12)
    while t < duration - 8:
        if not bag:
            bag = list(kinds)
            rng.shuffle(bag)
        kind = bag.pop()
        f = {"t": round(t, 2), "kind": kind, "pick": round(rng.random(), 4)}
        if kind in ("kill1", "kill2"):
            f["restart_after"] = round(rng.uniform(1, 3), 2)
            f["pick2"] = round(rng.random(), 4)
            busy = f["restart_after"]
        elif kind == "stop":
            f["hold"] = busy = round(rng.uniform(2, 10), 2)
        elif kind == "hog":
            f["hold"] = busy = round(rng.uniform(2, 6), 2)
        elif kind == "coord":
            f["restart_after"] = busy = round(rng.uniform(1, 4), 2)
        elif kind == "linkdown":
            f["hold"] = busy = round(rng.uniform(2, 6), 2)
        else:
            f["hold"] = busy = round(rng.uniform(5, 12), 2)
        faults.append(f)
        t += busy + rng.uniform(5, 10)
    return faults


def describe(f):
    extra = {k: v for k, v in f.items() if k not in ("t", "kind")}
    return f"t={f['t']:7.2f}s {f['kind']:8s} " + " ".join(
        f"{k}={v}" for k, v in extra.items())


# ---- processes ---------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CLUSTER_SH = os.path.join(ROOT, "tests", "cluster", "cluster.sh")
CLUSTER_ID = 40          # tests/cluster/jobs.sh uses 11-21, bench/multihost 30
CLUSTER_PORT = 29400


class Cluster:
    """Hosts as network namespaces (tests/cluster/cluster.sh): "coord" for
    the coordinator, node1..nodeN for the workers."""

    def __init__(self, n_hosts):
        self.id = CLUSTER_ID
        self.worker_hosts = [f"node{i + 1}" for i in range(n_hosts)]
        self.hosts = ["coord"] + self.worker_hosts

    def sh(self, *args):
        """Runs a cluster.sh function; raises SystemExit with its message."""
        r = subprocess.run(["bash", "-c", 'source "$1" && shift && "$@"', "chaos",
                            CLUSTER_SH, *args],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit(f"chaos: {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout.strip()

    def up(self):
        self.sh("cluster_up", str(self.id), *self.hosts)
        self.addr = {h: self.sh("cluster_addr", str(self.id), h) for h in self.hosts}

    def down(self):
        try:
            self.sh("cluster_down", str(self.id))
        except SystemExit as e:
            log(str(e))

    def link(self, host, state):
        self.sh("cluster_link", str(self.id), host, state)

    def wrap(self, host, cmd):
        """cmd run on `host`; nsenter and `ip netns exec` both exec, so the
        pid Popen returns is the command's own."""
        return ["nsenter", f"--uts=/run/herd-cluster/uts-hc{self.id}-{host}",
                "ip", "netns", "exec", f"hc{self.id}-{host}"] + cmd


def clean_env():
    """This environment without HERD_* (the soak sets what it means)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("HERD_")}


class Job:
    """One standalone job: a coordinator and `workers` herd-train slots."""

    def __init__(self, a, run_dir, log_dir, epochs, cluster=None):
        self.a, self.run, self.logs, self.epochs = a, run_dir, log_dir, epochs
        self.cluster, self.coord_key = cluster, None
        self.ckpt = os.path.join(run_dir, "ckpt")
        self.port = CLUSTER_PORT if cluster else free_port()
        self.coord_addr = cluster.addr["coord"] if cluster else "127.0.0.1"
        self.token = "chaos-" + secrets.token_hex(8)
        self.coord, self.coord_starts = None, 0
        self.slots = [None] * a.workers          # Popen per slot
        self.instances = [0] * a.workers
        self.worker_logs = []                    # every worker log file
        self.started = []                        # every worker started
        self.others = []                         # hogs: Popen
        self.stopped = set()                     # pids under SIGSTOP

    def start_coord(self):
        """Starts the coordinator; None when it cannot be started (retried)."""
        self.coord_starts += 1
        path = os.path.join(self.logs, f"coord-{self.coord_starts}.log")
        # The token in the environment, as herd recommends (argv is public).
        cmd = [os.path.join(self.a.bin, "herd"), "coord", "--port",
               str(self.port), "--run-dir", self.run,
               "--min", str(self.a.min), "--max", str(self.a.max)]
        if self.a.host_cooldown_failures is not None:
            cmd += ["--host-cooldown-failures",
                    str(self.a.host_cooldown_failures)]
        if self.cluster:
            cmd = self.cluster.wrap("coord", cmd + ["--bind", self.coord_addr])
        try:
            with open(path, "wb") as out:
                self.coord = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL,
                                              env=dict(clean_env(), HERD_TOKEN=self.token),
                                              start_new_session=True)
        except OSError as e:
            log(f"cannot start the coordinator: {e}")
            return None
        return self.coord

    def wait_coord_key(self, timeout=10):
        """Beyond loopback the coordinator runs CURVE; its public key (kept
        in RUN_DIR/coord.key, the same after a restart) is in its log."""
        path = os.path.join(self.logs, f"coord-{self.coord_starts}.log")
        end = time.time() + timeout
        while time.time() < end:
            m = re.search(r"^HERD_COORD_KEY=(\S+)$", open(path, errors="replace").read(),
                          re.M)
            if m:
                self.coord_key = m.group(1)
                return True
            time.sleep(0.1)
        return False

    def host_of(self, slot):
        hosts = self.cluster.worker_hosts
        return hosts[slot * len(hosts) // self.a.workers]

    def start_worker(self, slot):
        """Starts herd-train in `slot`; None when it cannot be started."""
        self.instances[slot] += 1
        path = os.path.join(self.logs, f"worker-{slot}.{self.instances[slot]}.log")
        env = clean_env()
        env.update(HERD_COORD=f"tcp://{self.coord_addr}:{self.port}", HERD_TOKEN=self.token,
                   HERD_RANK=str(slot), HERD_WORLD_SIZE=str(self.a.workers),
                   HERD_BACKEND="gloo")
        if self.coord_key:
            env["HERD_COORD_KEY"] = self.coord_key
        cmd = [os.path.join(self.a.bin, "herd-train"), "--data", self.a.data,
               "--epochs", str(self.epochs), "--seed", str(self.a.train_seed),
               "--ckpt-dir", self.ckpt, "--ckpt-every", str(self.a.ckpt_every)]
        if self.cluster:
            cmd = self.cluster.wrap(self.host_of(slot), cmd)
        # restore_signals=False: the worker inherits this process's SIGPIPE
        # SIG_IGN (as herd run's children do); True: the default disposition,
        # as a shell, srun or a container start it.
        try:
            with open(path, "wb") as out:
                p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True,
                                     restore_signals=self.a.sigpipe == "default")
        except OSError as e:
            log(f"cannot start worker slot {slot}: {e}")
            return None
        self.slots[slot] = p
        self.worker_logs.append(path)
        self.started.append({"pid": p.pid, "slot": slot, "ts": time.time(),
                             "instance": self.instances[slot]})
        return p

    def live_workers(self):
        return [p for p in self.slots if p is not None and p.poll() is None]

    def kill_all(self):
        """SIGKILL every process this job started (own pids only)."""
        procs = [p for p in self.slots if p] + self.others + (
            [self.coord] if self.coord else [])
        for p in procs:
            if p.poll() is None:
                try:
                    p.kill()
                    if p.pid in self.stopped:
                        os.kill(p.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log(f"pid {p.pid} did not exit after SIGKILL")


class Membership:
    """Members of the job by pid, from events.jsonl."""

    def __init__(self):
        self.rank, self.members = {}, set()
        self.generation, self.gen_ts, self.last_step, self.last_step_ts = 0, None, 0, None
        self.last_step_gen = None
        self.first_step_ts, self.done = None, None

    def feed(self, events):
        for e in events:
            kind = e.get("event")
            if kind in ("member_joined", "member_adopted"):
                self.rank[e["pid"]] = e["rank"]
                self.members.add(e["pid"])
            elif kind in ("member_failed", "member_left"):
                self.members.discard(e.get("pid"))
            elif kind == "generation":
                self.generation, self.gen_ts = e["generation"], e["ts"]
            elif kind == "step":
                self.last_step = max(self.last_step, e["step"])
                self.last_step_ts = e["ts"]
                self.last_step_gen = e.get("generation")
                if self.first_step_ts is None:
                    self.first_step_ts = e["ts"]
            elif kind == "done":
                self.done = e


# ---- the checkpoint dir on a small tmpfs ------------------------------------

def mount_tmpfs(path):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}",
                        "tmpfs", path], capture_output=True, text=True)
    return r.returncode == 0


def umount(path):
    if subprocess.run(["umount", path], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", path], capture_output=True)


def fill_disk(path):
    """Fills the file system of `path` to within 64 KiB; returns the file."""
    filler = os.path.join(path, "chaos-filler")
    st = os.statvfs(path)
    left = st.f_bavail * st.f_frsize - (64 << 10)
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb") as f:
        try:
            while left > 0:
                n = f.write(chunk[:min(left, len(chunk))])
                left -= n
            f.flush()
        except OSError:
            pass
    return filler


# ---- the soak ----------------------------------------------------------------

class Soak:
    def __init__(self, a, out_dir, epochs, schedule, disk_ok, cluster=None):
        self.a, self.epochs, self.schedule = a, epochs, schedule
        self.run = os.path.join(out_dir, "run")
        self.logs = os.path.join(out_dir, "logs")
        self.cluster = cluster
        self.job = Job(a, self.run, self.logs, epochs, cluster)
        self.job_ckpt_clear()
        self.disk_ok, self.mounted = disk_ok, False
        self.tail = JsonlTail(os.path.join(self.run, "events.jsonl"))
        self.m = Membership()
        self.total_steps = math.ceil(a.train_size / BATCH) * epochs
        self.injected, self.skipped = [], []
        self.windows = {}         # pid -> [(start, end)] when it was faulted
        self.kills = {}           # pid -> kill ts
        self.restart_at = {}      # slot -> ts
        self.restarts = 0
        self.cont_at = {}         # pid -> ts
        self.filler, self.unfill_at = None, None
        self.coord_restart_at, self.coord_rc = None, None
        self.coord_restarted_at, self.coord_retries = None, 0
        self.hog_until = None
        self.link_up_at = None    # (host, ts) while a host's cable is out
        self.worker_exits = []

    # -- plumbing --
    def job_ckpt_clear(self):
        """A run dir left by an earlier soak in the same --out-dir goes."""
        if os.path.ismount(self.job.ckpt):
            umount(self.job.ckpt)
        for d in (self.run, self.logs):
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)

    def members_live(self):
        """Live, running (not stopped) members, by rank."""
        live = {p.pid: slot for slot, p in enumerate(self.job.slots)
                if p is not None and p.poll() is None}
        pids = [pid for pid in self.m.members
                if pid in live and pid not in self.job.stopped]
        return sorted(pids, key=lambda pid: (self.m.rank.get(pid, 99), pid)), live

    def healthy(self):
        pids, live = self.members_live()
        up = self.job.coord and self.job.coord.poll() is None
        # a step of the current generation (one of the previous may be
        # logged just after the new generation's event)
        training = (self.m.gen_ts is not None and self.m.last_step_ts is not None
                    and self.m.last_step_ts > self.m.gen_ts
                    and self.m.last_step_gen == self.m.generation)
        return (up and len(pids) == self.a.workers and not self.job.stopped
                and self.coord_restart_at is None and self.filler is None
                and training and self.hog_until is None and self.link_up_at is None)

    def fault_window(self, pid, start, end):
        self.windows.setdefault(pid, []).append((start, end))

    def service(self, now):
        """Finishes faults in progress; restarts what the supervisor must."""
        for pid, at in list(self.cont_at.items()):
            if now >= at:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
                self.job.stopped.discard(pid)
                del self.cont_at[pid]
        if self.hog_until and now >= self.hog_until:
            for p in self.job.others:
                if p.poll() is None:
                    p.kill()
                p.wait(timeout=5)
            self.job.others, self.hog_until = [], None
        if self.link_up_at and now >= self.link_up_at[1]:
            self.cluster.link(self.link_up_at[0], "up")
            log(f"{self.link_up_at[0]}'s link is back")
            self.link_up_at = None
        if self.filler and now >= self.unfill_at:
            os.unlink(self.filler)
            self.filler = None
        if self.coord_restart_at and now >= self.coord_restart_at:
            if self.job.start_coord():
                self.coord_restart_at, self.coord_restarted_at = None, now
                log(f"coordinator restarted (pid {self.job.coord.pid})")
            else:
                self.coord_restart_at = now + 1
        for slot, p in enumerate(self.job.slots):
            if p is None or p.poll() is None:
                continue
            if p.returncode == 0 or self.m.done:
                continue
            if slot not in self.restart_at:
                # not killed here (those have their restart time already)
                rc = p.returncode
                how = (f"killed by {signal.Signals(-rc).name}" if rc < 0
                       else f"exit status {rc}")
                self.worker_exits.append({"ts": now, "slot": slot, "pid": p.pid,
                                          "rc": rc, "how": how,
                                          "was_stopped_here": any(
                                              f.get("kind") == "stop" and p.pid in f["pids"]
                                              for f in self.injected)})
                log(f"worker slot {slot} pid {p.pid}: {how}")
                self.restart_at[slot] = now + 1.0
            if now >= self.restart_at[slot]:
                del self.restart_at[slot]
                if self.restarts >= self.a.max_restarts:
                    log(f"no restarts left for slot {slot}")
                    self.job.slots[slot] = None
                    continue
                q = self.job.start_worker(slot)
                if q is None:
                    self.restart_at[slot] = now + 1
                    continue
                self.restarts += 1
                log(f"restarted worker slot {slot} as pid {q.pid} (newcomer)")

    # -- faults --
    def pick(self, f, pids, n):
        i = int(f["pick"] * len(pids)) % len(pids)
        chosen = [pids[i]]
        if n == 2:
            rest = pids[:i] + pids[i + 1:]
            chosen.append(rest[int(f["pick2"] * len(rest)) % len(rest)])
        return chosen

    def inject(self, f, now):
        kind, rec = f["kind"], dict(f)
        rec["ts"] = now
        pids, live = self.members_live()
        if kind in ("kill1", "kill2", "stop"):
            n = 2 if kind == "kill2" else 1
            if len(pids) - n < self.a.min:
                return self.skip(f, f"{len(pids)} live members")
            victims = self.pick(f, pids, n)
            rec["pids"] = victims
            rec["ranks"] = [self.m.rank.get(v) for v in victims]
            if kind == "stop":
                os.kill(victims[0], signal.SIGSTOP)
                self.job.stopped.add(victims[0])
                self.cont_at[victims[0]] = now + f["hold"]
                self.fault_window(victims[0], now, now + f["hold"] + STOP_GRACE_S)
            else:
                for v in victims:
                    os.kill(v, signal.SIGKILL)
                for v in victims:
                    self.kills[v] = now
                    self.fault_window(v, now, float("inf"))
                    self.restart_at[live[v]] = now + f["restart_after"]
        elif kind == "hog":
            code = ("import time\nend = time.time() + %f\n"
                    "while time.time() < end: pass\n" % f["hold"])
            for _ in range(os.cpu_count() or 1):
                self.job.others.append(subprocess.Popen(
                    [sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                    start_new_session=True))
            self.hog_until = now + f["hold"] + 1
            rec["processes"] = len(self.job.others)
        elif kind == "coord":
            if not self.job.coord or self.job.coord.poll() is not None:
                return self.skip(f, "coordinator not running")
            rec["pids"] = [self.job.coord.pid]
            self.job.coord.kill()
            self.job.coord.wait(timeout=10)
            self.coord_restart_at = now + f["restart_after"]
        elif kind == "linkdown":
            hosts = self.cluster.worker_hosts
            host = hosts[int(f["pick"] * len(hosts)) % len(hosts)]
            victims = [pid for pid in pids if self.job.host_of(live[pid]) == host]
            if len(pids) - len(victims) < self.a.min:
                return self.skip(f, f"{len(pids)} live members, {len(victims)} on {host}")
            rec["host"], rec["pids"] = host, victims
            rec["ranks"] = [self.m.rank.get(v) for v in victims]
            self.cluster.link(host, "down")
            self.link_up_at = (host, now + f["hold"])
            for v in victims:
                self.fault_window(v, now, now + f["hold"] + STOP_GRACE_S)
        elif kind == "diskfull":
            self.filler = fill_disk(self.job.ckpt)
            self.unfill_at = now + f["hold"]
            st = os.statvfs(self.job.ckpt)
            rec["free_bytes"] = st.f_bavail * st.f_frsize
        self.injected.append(rec)
        log(f"inject {describe(f)} at +{now - self.m.first_step_ts:.1f}s"
            + (f" pids {rec['pids']} ranks {rec.get('ranks')}" if "pids" in rec else ""))

    def skip(self, f, why):
        self.skipped.append(dict(f, why=why))
        log(f"skip {describe(f)}: {why}")

    def maybe_inject(self, now):
        if not self.schedule or self.m.first_step_ts is None:
            return
        f = self.schedule[0]
        due = self.m.first_step_ts + f["t"]
        if now < due:
            return
        elapsed = now - self.m.first_step_ts
        if elapsed > self.a.duration:
            for g in self.schedule:
                self.skip(g, "after --duration")
            self.schedule = []
            return
        if self.m.last_step >= 0.9 * self.total_steps:
            for g in self.schedule:
                self.skip(g, "job 90 % done")
            self.schedule = []
            return
        rate = self.m.last_step / max(1e-3, now - self.m.first_step_ts)
        eta = (self.total_steps - self.m.last_step) / max(rate, 1e-3)
        if eta < f.get("hold", f.get("restart_after", 0)) + 10:
            self.schedule.pop(0)
            return self.skip(f, f"job ends in about {eta:.0f} s")
        if self.healthy() or now >= due + WAIT_HEALTHY_S:
            # one fault at a time: wait for the previous one to be over
            busy = (self.cont_at or self.coord_restart_at or self.filler
                    or self.hog_until or self.link_up_at)
            if busy and now < due + WAIT_HEALTHY_S:
                return
            self.schedule.pop(0)
            if busy:
                return self.skip(f, "previous fault still in progress")
            if f["kind"] == "diskfull" and not self.mounted:
                return self.skip(f, "no tmpfs")
            self.inject(f, now)

    # -- the run --
    def go(self):
        if self.disk_ok:
            self.mounted = mount_tmpfs(self.job.ckpt)
            if not self.mounted:
                log("cannot mount a tmpfs on the checkpoint dir: no diskfull faults")
        self.t0 = time.time()
        if not self.job.start_coord():
            raise SystemExit("chaos: cannot start herd coord")
        if self.cluster and not self.job.wait_coord_key():
            raise SystemExit("chaos: herd coord printed no HERD_COORD_KEY in 10 s")
        time.sleep(0.3)
        for slot in range(self.a.workers):
            if not self.job.start_worker(slot):
                raise SystemExit("chaos: cannot start herd-train")
        deadline = self.t0 + self.a.duration + max(180, self.a.duration) + 60
        while True:
            now = time.time()
            self.m.feed(self.tail.read())
            self.service(now)
            self.maybe_inject(now)
            c = self.job.coord
            if c and self.coord_restart_at is None and c.poll() is not None:
                if (c.returncode != 0 and self.coord_restarted_at
                        and now - self.coord_restarted_at < 3 and self.coord_retries < 5):
                    self.coord_retries += 1  # e.g. the port not free yet
                    log(f"restarted coordinator exited {c.returncode}: again")
                    self.coord_restart_at = now + 1
                    continue
                self.coord_rc = c.returncode
                break
            if now > deadline:
                log("the job did not finish in time")
                self.coord_rc = "timeout"
                break
            time.sleep(0.05)
        # the coordinator is gone: the workers end on their own (bounded)
        end = time.time() + 30
        while self.job.live_workers() and time.time() < end:
            time.sleep(0.2)
        self.m.feed(self.tail.read())
        self.leftover = [p.pid for p in self.job.live_workers()]
        self.t_end = time.time()


# ---- analysis ----------------------------------------------------------------

def signal_of(e):
    """The member_failed event's "signal"; from its "reason" in older builds
    (the reasons coordinator/coord_*.c writes)."""
    s = e.get("signal")
    if s:
        return s
    r = e.get("reason") or ""
    for prefix, sig in (("progress watchdog", "watchdog"),
                        ("peer reported", "peer_report"),
                        ("no heartbeat", "heartbeat_silence"),
                        ("process exited", "child_exit"),
                        ("killed by signal", "child_exit"),
                        ("connection lost", "connection_closed")):
        if r.startswith(prefix):
            return sig
    return "unknown: " + r[:60]


def check_exactly_once(events, summary, epochs, train_size):
    steps = [e for e in events if e["event"] == "step"]
    by_num = {}
    twice = []
    for e in steps:
        if e["step"] in by_num:
            twice.append(e["step"])
        by_num[e["step"]] = e
    final = (summary or {}).get("final_step") or (max(by_num) if by_num else 0)
    missing = sorted(set(range(1, final + 1)) - set(by_num))
    back = []
    last_gen = 0
    for n in sorted(by_num):
        g = by_num[n]["generation"]
        if g < last_gen:
            back.append(n)
        last_gen = max(last_gen, g)
    used = {}
    for e in by_num.values():
        for i in range(e["sample_begin"], e["sample_end"]):
            key = (e["epoch"], i)
            used[key] = used.get(key, 0) + 1
    twice_samples = sum(1 for v in used.values() if v > 1)
    short = 0
    for ep in range(epochs):
        short += train_size - sum(1 for k in used if k[0] == ep)
    bad = twice_samples + short
    ok = not twice and not missing and not back and bad == 0
    return {"ok": ok, "final_step": final, "steps_logged": len(steps),
            "steps_logged_twice": twice[:20], "steps_missing": len(missing),
            "steps_missing_first": missing[:20], "generation_went_back_at": back[:20],
            "samples_not_exactly_once": bad, "samples_used_twice": twice_samples,
            "samples_never_used": short}


def ettr(events):
    steps = sorted((e for e in events if e["event"] == "step"), key=lambda e: e["step"])
    gens = [e["ts"] for e in events if e["event"] == "generation"]
    if not steps or not gens:
        return None
    gaps = [b["ts"] - a["ts"] for a, b in zip(steps, steps[1:])
            if b["generation"] == a["generation"] and b["step"] == a["step"] + 1]
    median = statistics.median(gaps) if gaps else 0.0
    kept = median  # the first step
    for a, b in zip(steps, steps[1:]):
        same = b["generation"] == a["generation"] and b["step"] == a["step"] + 1
        kept += max(0.0, b["ts"] - a["ts"]) if same else median
    total = steps[-1]["ts"] - min(gens)
    return {"ettr": kept / total if total > 0 else None, "kept_s": kept,
            "total_s": total, "median_step_s": median}


RE_JOINED = re.compile(r"joined generation (\d+) at step (\d+)")
RE_DISCARD = re.compile(r"generation (\d+) lost a member .*discarding step (\d+)")
RE_RESUME = re.compile(r"resuming from (\S+) \(step (\d+)")
RE_CKPT_FAIL = re.compile(r"checkpoint at step (\d+) failed")
RE_DROPPED = re.compile(r"(\d+) reports were dropped")


def steps_redone(events, worker_logs):
    """Per generation: highest step committed before it - step it started at."""
    formed = sorted({e["generation"] for e in events if e["event"] == "generation"})
    start = {}
    resumes, ckpt_failed, dropped = [], set(), []
    for path in worker_logs:
        try:
            text = open(path, errors="replace").read()
        except OSError:
            continue
        for g, s in RE_JOINED.findall(text):
            start[int(g)] = max(start.get(int(g), -1), int(s))
        for g, n in RE_DISCARD.findall(text):
            nxt = [x for x in formed if x > int(g)]
            if nxt:
                start[nxt[0]] = max(start.get(nxt[0], -1), int(n) - 1)
        for p, s in RE_RESUME.findall(text):
            resumes.append({"log": os.path.basename(path), "path": p, "step": int(s)})
        ckpt_failed.update(int(s) for s in RE_CKPT_FAIL.findall(text))
        for n in RE_DROPPED.findall(text):
            dropped.append({"log": os.path.basename(path), "reports": int(n)})
    best_before = {}
    by_gen = {}
    for e in events:
        if e["event"] == "step":
            by_gen[e["generation"]] = max(by_gen.get(e["generation"], 0), e["step"])
    total, per = 0, []
    for g in formed:
        best_before[g] = max([s for h, s in by_gen.items() if h < g] or [0])
        # A generation that never committed a step redid nothing (one whose
        # rendezvous was superseded: its newcomers, still at step 0, log
        # "discarding step 1").
        if g in start and g in by_gen:
            redo = max(0, best_before[g] - start[g])
            total += redo
            if redo:
                per.append({"generation": g, "started_at": start[g],
                            "committed_before": best_before[g], "redone": redo})
    return total, per, resumes, sorted(ckpt_failed), dropped


def analyse(soak, summary, baseline, verify):
    a = soak.a
    events = []
    for line in open(os.path.join(soak.run, "events.jsonl"), errors="replace"):
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    by_kind = {k: 0 for k in KINDS}
    for f in soak.injected:
        by_kind[f["kind"]] += 1
    skipped = {}
    for f in soak.skipped:
        skipped[f["kind"]] = skipped.get(f["kind"], 0) + 1
    failed = [e for e in events if e["event"] == "member_failed"]
    detections = {}
    false_failures, true_failures = [], []
    for e in failed:
        sig = signal_of(e)
        detections[sig] = detections.get(sig, 0) + 1
        pid, ts = e.get("pid"), e["ts"]
        ok = any(s - 0.05 <= ts <= end for s, end in soak.windows.get(pid, []))
        (true_failures if ok else false_failures).append(e)
    latency = {}
    undetected = []
    for f in soak.injected:
        if f["kind"] not in ("kill1", "kill2", "stop", "linkdown"):
            continue
        for pid in f["pids"]:
            hits = [e["ts"] - f["ts"] for e in failed
                    if e.get("pid") == pid and e["ts"] >= f["ts"] - 0.05]
            if hits:
                latency.setdefault(f["kind"], []).append(round(min(hits), 3))
            elif f["kind"] != "linkdown":  # a short cut may pass unnoticed
                undetected.append({"kind": f["kind"], "pid": pid, "ts": f["ts"]})
    redone, redone_per, resumes, ckpt_failed, dropped = steps_redone(
        events, soak.job.worker_logs)
    # newcomers (restarted workers): start -> first member_joined of their pid
    admit, never = [], []
    for w in soak.job.started:
        if w["instance"] == 1:
            continue
        joined = [e["ts"] for e in events if e["event"] == "member_joined"
                  and e.get("pid") == w["pid"] and e["ts"] >= w["ts"]]
        if joined:
            admit.append(round(min(joined) - w["ts"], 2))
        else:
            never.append(w["pid"])
    once = check_exactly_once(events, summary, soak.epochs, a.train_size)
    eff = ettr(events)
    acc = (summary or {}).get("test_accuracy")
    job_ok = soak.coord_rc == 0 and bool(summary) and summary.get("ok") is True
    committed = [e for e in events if e["event"] == "checkpoint_committed"]
    report = {
        "command": " ".join(sys.argv), "seed": a.seed, "duration_s": a.duration,
        "epochs": soak.epochs, "train_seed": a.train_seed, "workers": a.workers,
        "hosts": ({"coord": "coord", "workers": {h: [s for s in range(a.workers)
                                                     if soak.job.host_of(s) == h]
                                                 for h in soak.cluster.worker_hosts}}
                  if soak.cluster else "loopback"),
        "wall_s": round(soak.t_end - soak.t0, 1),
        "faults_injected": by_kind, "faults_injected_total": len(soak.injected),
        "faults_skipped": skipped, "faults": soak.injected, "skipped": soak.skipped,
        "detections_by_signal": detections, "member_failed": len(failed),
        "true_failures": len(true_failures), "false_failures": len(false_failures),
        "false_failure_events": false_failures, "undetected_faults": undetected,
        "detection_latency_s": {k: {"n": len(v), "median": statistics.median(v),
                                    "max": max(v)} for k, v in latency.items()},
        "worker_restarts": soak.restarts,
        "unexpected_worker_exits": soak.worker_exits,
        "coordinator_starts": soak.job.coord_starts,
        "generations": len([e for e in events if e["event"] == "generation"]),
        "host_cooldowns": [e for e in events if e["event"] == "host_cooldown"],
        "steps_redone": redone, "steps_redone_by_generation": redone_per,
        "checkpoint_resumes": resumes, "exactly_once": once,
        "reports_dropped_by_workers": dropped,
        "newcomer_admission_s": {"n": len(admit), "median": statistics.median(admit)
                                 if admit else None, "max": max(admit) if admit else None,
                                 "never_admitted_pids": never},
        "checkpoints_committed": len(committed),
        "checkpoint_saves_failed": len(ckpt_failed),
        "ckpt_verify": verify, "ettr": eff,
        "test_accuracy": acc, "baseline_accuracy": baseline,
        "accuracy_delta_points": (round((acc - baseline) * 100, 3)
                                  if acc is not None and baseline is not None else None),
        "job_ok": job_ok, "coordinator_exit": soak.coord_rc,
        "summary_reason": (summary or {}).get("reason"),
        "leftover_workers": soak.leftover,
    }
    problems = []
    if false_failures:
        problems.append(f"{len(false_failures)} false failures")
    if not once["ok"]:
        problems.append("exactly-once violated")
    if not job_ok:
        problems.append(f"job not ok (coordinator exit {soak.coord_rc}, "
                        f"reason {(summary or {}).get('reason')!r})")
    if not verify["ok"]:
        problems.append("herd ckpt verify failed")
    if acc is None or baseline is None or abs(acc - baseline) > 0.005:
        problems.append(f"accuracy {acc} vs baseline {baseline}: > 0.5 points")
    report["problems"] = problems
    report["pass"] = not problems
    return report


def text_summary(r):
    inj = ", ".join(f"{k} {v}" for k, v in r["faults_injected"].items())
    det = ", ".join(f"{k} {v}" for k, v in sorted(r["detections_by_signal"].items())) or "none"
    lat = "; ".join(f"{k} median {v['median']:.2f} s max {v['max']:.2f} s"
                    for k, v in r["detection_latency_s"].items()) or "none"
    once = r["exactly_once"]
    e = r["ettr"] or {}
    acc = r["test_accuracy"]
    hosts = r["hosts"]
    if isinstance(hosts, dict):
        hosts = "coordinator on its own host, workers " + ", ".join(
            f"{h} (slots {','.join(map(str, slots))})" for h, slots in hosts["workers"].items())
    lines = [
        f"chaos soak seed {r['seed']}: {r['duration_s']} s of faults, {r['epochs']} epochs, "
        f"wall {r['wall_s']} s; {hosts}",
        f"faults injected: {r['faults_injected_total']} ({inj}); skipped: "
        f"{sum(r['faults_skipped'].values())} {r['faults_skipped'] or ''}".rstrip(),
        f"detections by signal: {det} (member_failed {r['member_failed']}); "
        f"undetected faults: {len(r['undetected_faults'])}",
        f"time to member_failed: {lat}",
        f"false failures: {r['false_failures']}",
        f"steps redone: {r['steps_redone']}; worker restarts {r['worker_restarts']}; "
        f"coordinator starts {r['coordinator_starts']}; generations {r['generations']}; "
        f"host cool-downs {len(r['host_cooldowns'])}",
        f"newcomers: {r['newcomer_admission_s']['n']} admitted (start -> member_joined "
        f"median {r['newcomer_admission_s']['median']} s, max "
        f"{r['newcomer_admission_s']['max']} s), never admitted "
        f"{len(r['newcomer_admission_s']['never_admitted_pids'])}",
        f"workers that exited unasked: {len(r['unexpected_worker_exits'])}"
        + "".join(f"; pid {x['pid']} {x['how']}" for x in r["unexpected_worker_exits"]),
        f"exactly once: {'ok' if once['ok'] else 'VIOLATED'} ({once['final_step']} steps, "
        f"samples not exactly once {once['samples_not_exactly_once']}, steps missing "
        f"{once['steps_missing']}, logged twice {len(once['steps_logged_twice'])}; "
        "reports dropped by a worker: "
        f"{max([d['reports'] for d in r['reports_dropped_by_workers']] or [0])})",
        f"checkpoints: {r['checkpoints_committed']} committed, "
        f"{r['checkpoint_saves_failed']} saves failed; herd ckpt verify: "
        f"{'ok' if r['ckpt_verify']['ok'] else 'FAILED'}",
        "ETTR: " + (f"{e['ettr']:.3f} (kept steps {e['kept_s']:.1f} s of "
                    f"{e['total_s']:.1f} s)" if e.get("ettr") else "n/a"),
        f"accuracy: {acc} vs baseline {r['baseline_accuracy']} "
        f"({r['accuracy_delta_points']} points); job ok: {r['job_ok']}",
        "PASS" if r["pass"] else "FAIL: " + "; ".join(r["problems"]),
    ]
    return "\n".join(lines)


# ---- baseline ----------------------------------------------------------------

def baseline_run(a, epochs, out_dir, cluster):
    """A fault-free run of the same layout; returns its test accuracy."""
    s = Soak(a, os.path.join(out_dir, "baseline"), epochs, [], False, cluster)
    log(f"baseline: fault-free run, {epochs} epochs")
    try:
        s.go()
    finally:
        s.job.kill_all()
    summary = json.load(open(os.path.join(s.run, "summary.json")))
    if s.coord_rc != 0 or summary.get("ok") is not True:
        raise SystemExit(f"chaos: baseline run failed: {summary.get('reason')}")
    eff = ettr([json.loads(l) for l in open(os.path.join(s.run, "events.jsonl"))])
    log(f"baseline accuracy {summary['test_accuracy']:.4f} "
        f"in {s.t_end - s.t0:.0f} s (ETTR {eff['ettr']:.3f})")
    return summary["test_accuracy"], eff


def get_baseline(a, epochs, out_dir, cluster):
    key = {"epochs": epochs, "train_seed": a.train_seed, "workers": a.workers,
           "data": os.path.abspath(a.data), "ckpt_every": a.ckpt_every,
           "hosts": len(cluster.worker_hosts) if cluster else 0}
    if a.baseline is not None:
        return a.baseline, None
    if a.baseline_file and os.path.exists(a.baseline_file):
        try:
            cached = json.load(open(a.baseline_file))
            if cached.get("key") == key:
                log(f"baseline accuracy {cached['test_accuracy']} from {a.baseline_file}")
                return cached["test_accuracy"], cached.get("ettr")
        except (ValueError, OSError):
            pass
    acc, eff = baseline_run(a, epochs, out_dir, cluster)
    if a.baseline_file:
        os.makedirs(os.path.dirname(os.path.abspath(a.baseline_file)), exist_ok=True)
        tmp = a.baseline_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"key": key, "test_accuracy": acc, "ettr": eff}, f)
        os.replace(tmp, a.baseline_file)
    return acc, eff


# ---- main --------------------------------------------------------------------

def freeze_bins(a, out_dir):
    """Copies herd and herd-train (statically linked to libherd) into
    OUT_DIR/bin, so that a rebuild during the soak changes nothing under test
    and restarts never find a binary half written. A binary missing or still
    changing is waited for (up to 3 minutes)."""
    dest = os.path.join(out_dir, "bin")
    os.makedirs(dest, exist_ok=True)
    for b in ("herd", "herd-train"):
        src = os.path.join(a.bin, b)
        end = time.time() + 180
        while True:
            try:
                st1 = os.stat(src)
                time.sleep(1)
                st2 = os.stat(src)
                if (os.access(src, os.X_OK) and st1.st_size == st2.st_size
                        and st1.st_mtime == st2.st_mtime and st2.st_size > 0):
                    shutil.copy2(src, os.path.join(dest, b))
                    break
            except OSError:
                pass
            if time.time() > end:
                return False
            log(f"waiting for {src} (missing or being rebuilt)")
            time.sleep(10)
    a.bin = dest
    return True


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__[__doc__.index("Layout"):])
    ap.add_argument("--seed", type=int, default=1, help="draws the fault schedule")
    ap.add_argument("--duration", type=float, default=180,
                    help="seconds of fault injection after the first step")
    ap.add_argument("--epochs", type=int, default=0,
                    help="herd-train epochs (default: duration / 10; 18 epochs "
                         "took 127-145 s under faults on the 2-core test machine)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--data", default=os.path.join(ROOT, "build", "test-data",
                                                   "fashion-mnist.h5"))
    ap.add_argument("--train-seed", type=int, default=7)
    ap.add_argument("--ckpt-every", type=int, default=50)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--min", type=int, default=2)
    ap.add_argument("--max", type=int, default=4)
    ap.add_argument("--max-restarts", type=int, default=20)
    ap.add_argument("--host-cooldown-failures", type=int, default=None,
                    help="passed to herd coord (default: herd's)")
    ap.add_argument("--sigpipe", choices=("default", "ignore"), default="default",
                    help="SIGPIPE disposition the workers start with (default: "
                         "the default action, as from a shell, srun or a pod; "
                         "ignore: as herd run's children)")
    ap.add_argument("--hosts", type=int, default=2,
                    help="worker hosts of the test cluster (root only; default 2)")
    ap.add_argument("--no-cluster", action="store_true",
                    help="everything on loopback, also as root (no linkdown)")
    ap.add_argument("--kinds", default=",".join(KINDS),
                    help="fault kinds to draw from (comma separated)")
    ap.add_argument("--baseline", type=float, help="fault-free accuracy (skips the run)")
    ap.add_argument("--baseline-file",
                    help="cache of the fault-free accuracy: used when it matches "
                         "epochs/seed/data, else measured and written")
    ap.add_argument("--out-dir", help="logs, run dir, report (default: a new /tmp dir)")
    ap.add_argument("--json", help="report file (default OUT_DIR/report.json)")
    ap.add_argument("--schedule-only", action="store_true",
                    help="print the schedule and exit")
    a = ap.parse_args()
    a.kinds = [k for k in a.kinds.split(",") if k]
    if any(k not in KINDS for k in a.kinds) or not a.kinds:
        ap.error(f"--kinds: choose from {','.join(KINDS)}")
    if a.duration <= 0 or a.workers < a.min or a.min < 1:
        ap.error("bad --duration / --workers / --min")
    if not 1 <= a.hosts <= a.workers:
        ap.error("--hosts: 1 to --workers")
    return a


def main():
    a = parse_args()
    epochs = a.epochs or max(1, round(a.duration / 10))
    root = os.geteuid() == 0
    disk_ok = "diskfull" in a.kinds and root
    use_cluster = root and not a.no_cluster
    kinds = [k for k in a.kinds if (k != "diskfull" or disk_ok)
             and (k != "linkdown" or use_cluster)]
    if "diskfull" in a.kinds and not disk_ok:
        log("not root: no tmpfs for diskfull faults; left out of the schedule")
    if "linkdown" in a.kinds and not use_cluster:
        log("no test cluster (" + ("--no-cluster" if root else "not root")
            + "): everything on loopback, no linkdown faults")
    schedule = draw_schedule(a.seed, a.duration, kinds)
    print(f"chaos: seed {a.seed}, duration {a.duration:g} s, {epochs} epochs, "
          f"{len(schedule)} faults:", flush=True)
    for f in schedule:
        print("  " + describe(f), flush=True)
    if a.schedule_only:
        return 0
    if not os.path.exists(a.data):
        print(f"chaos: no data file {a.data}", file=sys.stderr)
        return 2
    a.train_size = 60000
    try:
        import h5py
        with h5py.File(a.data, "r") as f:
            a.train_size = int(f["train/labels"].shape[0])
    except Exception:
        pass
    out_dir = a.out_dir or tempfile.mkdtemp(prefix="herd-chaos.")
    os.makedirs(out_dir, exist_ok=True)
    log(f"output in {out_dir}")
    if not freeze_bins(a, out_dir):
        print(f"chaos: no herd / herd-train in {a.bin}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    soak, cluster = None, Cluster(a.hosts) if use_cluster else None
    try:
        if cluster:
            cluster.up()
            log(f"test cluster {cluster.id}: " + ", ".join(
                f"{h} {cluster.addr[h]}" for h in cluster.hosts))
        baseline, base_eff = get_baseline(a, epochs, out_dir, cluster)
        soak = Soak(a, os.path.join(out_dir, "soak"), epochs, list(schedule), disk_ok,
                    cluster)
        log(f"soak: coordinator port {soak.job.port}, run dir {soak.run}")
        soak.go()
        soak.job.kill_all()
        try:
            summary = json.load(open(os.path.join(soak.run, "summary.json")))
        except (OSError, ValueError):
            summary = None
        v = subprocess.run([os.path.join(a.bin, "herd"), "ckpt", "verify", soak.job.ckpt],
                           capture_output=True, text=True, timeout=120)
        verify = {"ok": v.returncode == 0, "rc": v.returncode,
                  "output": (v.stdout + v.stderr).strip().splitlines()[-10:]}
        report = analyse(soak, summary, baseline, verify)
        report["baseline_ettr"] = base_eff
        report["schedule"] = schedule
        report["out_dir"] = out_dir
    except Interrupted as e:
        log(f"interrupted ({e})")
        return 130
    finally:
        if soak:
            soak.job.kill_all()
            if soak.filler and os.path.exists(soak.filler):
                os.unlink(soak.filler)
            if soak.mounted:
                umount(soak.job.ckpt)
        if cluster:
            cluster.down()
    path = a.json or os.path.join(out_dir, "report.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1, default=str)
    text = text_summary(report)
    with open(os.path.splitext(path)[0] + ".txt", "w") as f:
        f.write(text + "\n")
    print(text, flush=True)
    log(f"report: {path}")
    for e in report["false_failure_events"]:
        print("false failure: " + json.dumps(e), flush=True)
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
