#!/usr/bin/python3
"""bench/recovery driver: kill -9 workers of a running job and time recovery.

  recovery.py herd  --bin DIR --data F --kills K --out SIDE.json [--quick]
  recovery.py torch --data F --kills K --out SIDE.json
  recovery.py report --herd H.json [--torch T.json] --json OUT --md OUT --command CMD

Started by bench/recovery/run.sh; see bench/README.md (Recovery) for what is
measured. Every process is started here in its own session and only those
pids are ever signalled; every wait has a deadline.

Definitions, per kill (kill_ts = time.time() just before os.kill):
  * old generation (herd) / attempt (torch): the one the killed worker was in;
  * last_step: the highest step committed in it (herd: step events of that
    generation; torch: rank 0's step log of that attempt);
  * first_step: the first step completed after the failure (herd: first step
    event of a later generation; torch: first step of a later attempt);
  * recovery_s = ts(first_step) - kill_ts: "kill -9 to the next completed step";
  * catchup_s = ts(first step > last_step) - kill_ts: back to where it was;
  * steps_redone = last_step + 1 - first_step: committed steps lost and
    trained again (0 when the job goes on from where it was; the step in
    flight at the kill is never counted: it was not committed).
"""
import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

MIB = 1024 * 1024


def log(msg):
    print(f"recovery: {msg}", flush=True)


class JsonlTail:
    """The records of a JSON-lines file that another process appends to,
    read incrementally (only whole lines), so polling stays cheap."""

    def __init__(self, path):
        self.path, self.offset, self.records, self.partial = path, 0, [], b""

    def read(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.records
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            try:
                self.records.append(json.loads(line))
            except ValueError:
                pass
        return self.records


def children(pid):
    """Direct children of pid (from /proc/PID/task/*/children)."""
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return sorted(set(kids))


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def proc_mem(pid):
    """VmRSS, RssAnon, RssFile, RssShmem, VmHWM in bytes."""
    keys = ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM")
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in keys:
                    out[k] = int(v.split()[0]) * 1024
    except OSError:
        return None
    return out if len(out) == len(keys) else None


def stop_session(proc, term_wait, extra_pids=()):
    """SIGTERM the leader, then SIGKILL its session's group and the given
    pids (all started by us) once term_wait seconds have passed."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=term_wait)
        except subprocess.TimeoutExpired:
            pass
    for pid in extra_pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group we created
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0, "p50": None, "max": None, "min": None, "mean": None}
    return {"n": len(values), "p50": statistics.median(values),
            "max": max(values), "min": min(values),
            "mean": statistics.fmean(values)}


# ---- herd -----------------------------------------------------------------

class HerdJob:
    def __init__(self, args, tmp):
        self.args = args
        self.run_dir = os.path.join(tmp, "herd-run")
        self.events_path = os.path.join(self.run_dir, "events.jsonl")
        self.log_path = os.path.join(tmp, "herd-run.log")
        env = dict(os.environ)
        env["PATH"] = args.bin + os.pathsep + env.get("PATH", "")
        self.cmd = ["herd", "run", "-n", "4", "--min", "3", "--max", "4",
                    "--max-restarts", str(args.max_restarts), "--backend",
                    "gloo", "--launcher", "local", "--run-dir", self.run_dir,
                    "--", "herd-train", "--data", args.data, "--epochs",
                    str(args.epochs)]
        self.proc = subprocess.Popen(self.cmd, env=env, start_new_session=True,
                                     stdout=open(self.log_path, "w"),
                                     stderr=subprocess.STDOUT)
        self.status_url = None
        self.seen_workers = set()
        self.tail = JsonlTail(self.events_path)

    def events(self):
        return self.tail.read()

    def status(self):
        if not self.status_url:
            for e in self.events():
                if e.get("event") == "http":
                    self.status_url = e["url"].rstrip("/") + "/status"
        if not self.status_url:
            return None
        try:
            with urllib.request.urlopen(self.status_url, timeout=2) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def workers(self):
        """herd-train processes that herd run started (its children)."""
        pids = [p for p in children(self.proc.pid)
                if "herd-train" in cmdline(p) and alive(p)]
        self.seen_workers.update(pids)
        return pids

    def members(self):
        """Active members [(rank, pid)] that are our own live workers: from
        /status (the coordinator's current ranks); events as a fallback."""
        mine = set(self.workers())
        st = self.status()
        if st is not None:
            return [(m["rank"], m["pid"]) for m in st.get("members", [])
                    if m.get("state") == "active" and m["pid"] in mine], st
        ranks = {}
        for e in self.events():  # newest member_joined per pid, minus failures
            if e.get("event") == "member_joined":
                ranks[e["pid"]] = e["rank"]
            elif e.get("event") in ("member_failed", "member_left"):
                ranks.pop(e.get("pid"), None)
        return [(r, p) for p, r in ranks.items() if p in mine], None


def last_step_event(events):
    for e in reversed(events):
        if e.get("event") == "step":
            return e
    return None


def run_herd(args):
    """One herd run for all the kills. Only when that job itself fails (it
    ends, stalls, or a kill is not followed by a step: see "jobs" in the
    result) does a fresh herd run take the remaining kills, at most
    args.max_jobs runs in all; each job's end is recorded."""
    tmp = tempfile.mkdtemp(prefix="herd-recovery.")
    t_end = time.time() + args.deadline
    kills, jobs, mem_samples, coord_mem = [], [], [], None
    while (sum(1 for k in kills if k.get("recovered")) < args.kills and
           len(jobs) < args.max_jobs and time.time() < t_end - 10):
        job_kills, info, cm = run_herd_job(
            args, os.path.join(tmp, f"job{len(jobs) + 1}"), len(jobs) + 1,
            args.kills - sum(1 for k in kills if k.get("recovered")),
            len(kills), t_end, mem_samples)
        kills += job_kills
        jobs.append(info)
        coord_mem = cm or coord_mem
    recovered = [k for k in kills if k.get("recovered")]
    result = {
        "side": "herd", "command": jobs[0]["command"] if jobs else None,
        "kills": kills, "jobs": jobs,
        "unrecovered_kills": len(kills) - len(recovered),
        "recovery_s": summary([k.get("recovery_s") for k in kills]),
        "catchup_s": summary([k.get("catchup_s") for k in kills]),
        "detect_s": summary([k.get("detect_s") for k in kills]),
        "steps_redone": summary([k.get("steps_redone") for k in kills]),
        "memory": memory_report(mem_samples, coord_mem),
        "ok": len(recovered) >= args.kills,
    }
    for key in ("other_member_failures", "host_cooldowns", "generations",
                "workers_restarted"):
        result[key] = sum(j[key] for j in jobs)
    result["other_member_failure_reasons"] = sorted(
        {r for j in jobs for r in j["other_member_failure_reasons"]})[:8]
    result["error"] = "; ".join(f"job {j['job']}: {j['error']}" for j in jobs
                                if j["error"]) or None
    if not args.keep:
        subprocess.run(["rm", "-rf", tmp])
    else:
        result["tmp"] = tmp
    return result


def run_herd_job(args, tmp, index, n_kills, kills_before, t_end, mem_samples):
    os.makedirs(tmp)
    job = HerdJob(args, tmp)
    log(f"herd job {index}: {' '.join(job.cmd)}")
    kills = []
    error, coord_mem = None, None
    try:
        # First steps (bounded).
        first_end = min(t_end, time.time() + 60)
        while time.time() < first_end and job.proc.poll() is None:
            if last_step_event(job.events()):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("herd run produced no step")
        recovered_at = time.time()
        for k in range(kills_before, kills_before + n_kills):
            # Ready: a few seconds of training since the last recovery, the
            # world back to 4 (newcomer admitted) or rejoin_wait passed, and
            # the current generation already stepping (no change in flight).
            delay = random.uniform(args.min_gap, args.max_gap)
            ready_deadline = time.time() + delay + args.rejoin_wait
            stall_end = time.time() + delay + args.recover_timeout
            while True:
                if job.proc.poll() is not None:
                    raise RuntimeError(f"herd run exited ({job.proc.returncode})"
                                       f" before kill {k + 1}")
                if time.time() > t_end:  # the bench's own bound, not a stall
                    raise RuntimeError(f"the {args.deadline:g} s deadline passed"
                                       f" before kill {k + 1}")
                if time.time() > stall_end:
                    raise RuntimeError(f"no progress for {args.recover_timeout:g}"
                                       f" s before kill {k + 1}")
                members, st = job.members()
                ev = job.events()
                last = last_step_event(ev)
                gen_ok = (st is None or last is None or
                          st.get("generation") == last.get("generation"))
                fresh = last and last["ts"] > time.time() - 0.5
                waited = time.time() - recovered_at >= delay
                full = len(members) >= 4
                if waited and fresh and gen_ok and (
                        full or time.time() > ready_deadline):
                    victims = [(r, p) for r, p in members if r != 0]
                    if victims:
                        break
                time.sleep(0.1)
            for r, p in members:
                m = proc_mem(p)
                if m:
                    mem_samples.append(dict(m, pid=p, rank=r))
            rank, pid = random.choice(victims)
            ev = job.events()
            gen_at_kill = last_step_event(ev)["generation"]
            n_events = len(ev)
            kill_ts = time.time()
            os.kill(pid, signal.SIGKILL)
            rec = {"kill": k + 1, "job": index, "kill_ts": kill_ts,
                   "rank": rank, "pid": pid, "world_before": len(members),
                   "generation": gen_at_kill}
            # Recovered: a step event of a later generation after the kill.
            wait_end = time.time() + args.recover_timeout
            first = None
            while time.time() < wait_end and first is None:
                for e in job.events()[n_events:]:
                    if (e.get("event") == "step" and e["ts"] > kill_ts and
                            e["generation"] > gen_at_kill):
                        first = e
                        break
                else:
                    time.sleep(0.02)
            rec["recovered"] = first is not None
            kills.append(rec)
            if first is None:
                raise RuntimeError(f"kill {k + 1}: no step within "
                                   f"{args.recover_timeout:g} s")
            recovered_at = time.time()
            log(f"herd kill {k + 1}: rank {rank} pid {pid} (world "
                f"{len(members)}) -> step in {first['ts'] - kill_ts:.3f} s")
    except RuntimeError as e:
        log(f"herd job {index} failed: {e}")
        error = str(e)
    finally:
        coord_mem = proc_mem(job.proc.pid)
        stop_ts = time.time()
        stop_session(job.proc, 15, job.seen_workers)
    events = job.events()
    analyse_herd(events, kills)
    # Failures the bench did not cause (heartbeats missed on a loaded host),
    # up to the stop (herd run's SIGTERM ends workers still joining).
    spurious = [e for e in events if e.get("event") == "member_failed" and
                e["ts"] < stop_ts and
                e.get("pid") not in {k["pid"] for k in kills}]
    log_text = open(job.log_path, errors="replace").read()
    info = {
        "job": index, "command": " ".join(job.cmd), "kills": len(kills),
        "error": error,
        "other_member_failures": len(spurious),
        "other_member_failure_reasons": sorted({e.get("reason", "")
                                                for e in spurious}),
        "host_cooldowns": sum(1 for e in events
                              if e.get("event") == "host_cooldown"),
        "generations": sum(1 for e in events if e.get("event") == "generation"),
        "workers_restarted": log_text.count("restarted worker"),
        "herd_run_log_tail": "\n".join(
            l for l in log_text.splitlines() if not l.startswith("herd: step")
        )[-3000:],
    }
    return kills, info, coord_mem


def analyse_herd(events, kills):
    steps = [e for e in events if e.get("event") == "step"]
    for k in kills:
        if not k.get("recovered"):
            continue
        t, g = k["kill_ts"], k["generation"]
        old = [e["step"] for e in steps if e["generation"] == g]
        first = next(e for e in steps if e["ts"] > t and e["generation"] > g)
        last_step = max(old)
        catch = next((e for e in steps if e["ts"] > t and e["step"] > last_step),
                     None)
        failed = next((e for e in events if e.get("event") == "member_failed"
                       and e.get("pid") == k["pid"] and e["ts"] >= t - 1), None)
        k.update({
            "last_step": last_step, "first_step": first["step"],
            "new_generation": first["generation"],
            "world_after": first.get("world_size"),
            "recovery_s": first["ts"] - t,
            "catchup_s": catch["ts"] - t if catch else None,
            "steps_redone": last_step + 1 - first["step"],
            "detect_s": failed["ts"] - t if failed else None,
            "detect_reason": failed.get("reason") if failed else None,
        })


def memory_report(samples, coord_mem):
    """Per-worker resident memory and libherd's share beyond the buffers.

    Buffers of herd-train with its defaults (MLP 784-256-128-10, AdamW,
    batch 128, Fashion-MNIST kept as uint8), from trainer/*.c:
      dataset: train+test images and labels, uint8;
      params, grad (+5 slots), AdamW m and v: float32 each;
      MLP scratch: batch x (256+128+10 + 2*256) floats; batch input x:
      batch x 784 floats; sampler permutation: 60000 uint32.
    libherd's own = RssAnon - buffers (anonymous memory: heap, stacks, the
    coordinator client, gloo, checkpoint writer, plus libc/BLAS/HDF5 arenas);
    shared library code (RssFile) is reported on its own.
    """
    p = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    buffers = {
        "dataset": 60000 * 784 + 60000 + 10000 * 784 + 10000,
        "params": p * 4, "grad": (p + 5) * 4, "adamw_state": 2 * p * 4,
        "mlp_scratch": 128 * (256 + 128 + 10 + 2 * 256) * 4,
        "batch_input": 128 * 784 * 4 + 128, "sampler": 60000 * 4,
    }
    total = sum(buffers.values())
    out = {"method": " ".join(memory_report.__doc__.split("\n\n")[1].split()),
           "buffers_bytes": buffers, "buffers_total_bytes": total,
           "samples": len(samples), "raw": samples}
    if samples:
        for key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = summary([s[key] for s in samples])
        over = [s["RssAnon"] - total for s in samples]
        out["libherd_own_bytes"] = summary(over)
        out["rss_minus_buffers_bytes"] = summary(
            [s["VmRSS"] - total for s in samples])
    if coord_mem:
        out["herd_run_coordinator"] = coord_mem
    return out


# ---- torch ----------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_torch(args):
    tmp = tempfile.mkdtemp(prefix="torch-recovery.")
    step_log = os.path.join(tmp, "steps.jsonl")
    out_log = os.path.join(tmp, "torchrun.log")
    peer = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "torch_peer.py")
    port = free_port()
    cmd = ["/usr/bin/python3", "-m", "torch.distributed.run", "--nnodes", "1:1",
           "--nproc_per_node", "4", "--max_restarts", str(args.max_restarts),
           "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}",
           "--redirects", "2", "--tee", "1", peer, "--data", args.data,
           "--ckpt", os.path.join(tmp, "ckpt.pt"), "--ckpt-every",
           str(args.ckpt_every), "--step-log", step_log, "--epochs",
           str(args.epochs)]
    log(f"torch: {' '.join(cmd)}")
    proc = subprocess.Popen(cmd, cwd=tmp, start_new_session=True,
                            stdout=open(out_log, "w"), stderr=subprocess.STDOUT)
    seen = set()

    def workers():
        pids = [p for p in children(proc.pid)
                if "torch_peer.py" in cmdline(p) and alive(p)]
        seen.update(pids)
        return pids

    tail = JsonlTail(step_log)

    def steps():
        return [e for e in tail.read() if "step" in e]

    def last_step():
        return next((e for e in reversed(tail.read()) if "step" in e), None)

    kills, mem = [], []
    t_end = time.time() + args.deadline
    ok, error = True, None
    try:
        while time.time() < t_end and proc.poll() is None and not last_step():
            time.sleep(0.1)
        if not last_step():
            raise RuntimeError("torchrun produced no step")
        recovered_at = time.time()
        for k in range(args.kills):
            delay = random.uniform(args.min_gap, args.max_gap)
            while True:
                if time.time() > t_end or proc.poll() is not None:
                    raise RuntimeError("torchrun ended or deadline before "
                                       f"kill {k + 1}")
                last = last_step()
                ws = workers()
                if (time.time() - recovered_at >= delay and last and
                        last["ts"] > time.time() - 0.5 and len(ws) == 4):
                    break
                time.sleep(0.1)
            for w in ws:
                m = proc_mem(w)
                if m:
                    mem.append(m["VmRSS"])
            pid = random.choice(ws)
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = dict(x.split(b"=", 1) for x in f.read().split(b"\0")
                               if b"=" in x)
                rank = int(env.get(b"RANK", b"-1"))
            except OSError:
                rank = -1
            attempt = last["attempt"]
            n_lines = len(tail.read())
            kill_ts = time.time()
            os.kill(pid, signal.SIGKILL)
            rec = {"kill": k + 1, "kill_ts": kill_ts, "rank": rank, "pid": pid,
                   "attempt": attempt}
            wait_end = time.time() + args.recover_timeout
            first = None
            while time.time() < wait_end and first is None:
                if proc.poll() is not None:
                    break
                for e in tail.read()[n_lines:]:
                    if "step" in e and e["attempt"] > attempt:
                        first = e
                        break
                else:
                    time.sleep(0.05)
            rec["recovered"] = first is not None
            kills.append(rec)
            if first is None:
                log(f"torch kill {k + 1}: no step within "
                    f"{args.recover_timeout} s (torchrun "
                    f"{'exited ' + str(proc.returncode) if proc.poll() is not None else 'running'})")
                ok = False
                break
            recovered_at = time.time()
            log(f"torch kill {k + 1}: rank {rank} pid {pid} -> step in "
                f"{first['ts'] - kill_ts:.3f} s")
        if kills and kills[-1]["recovered"]:  # let the last one catch up
            old = max(e["step"] for e in steps() if e["attempt"] == attempt)
            wait_end = min(t_end, time.time() + 30)
            while time.time() < wait_end and proc.poll() is None:
                if last_step()["step"] > old:
                    break
                time.sleep(0.1)
    except RuntimeError as e:
        log(f"torch: {e}")
        ok, error = False, str(e)
    finally:
        stop_session(proc, 30, seen)
    lines = tail.read()
    all_steps = [e for e in lines if "step" in e]
    starts = [e for e in lines if e.get("event") == "start"]
    for k in kills:
        if not k["recovered"]:
            continue
        t, a = k["kill_ts"], k["attempt"]
        old = [e["step"] for e in all_steps if e["attempt"] == a]
        first = next(e for e in all_steps if e["attempt"] > a)
        start = next((e for e in starts if e["attempt"] == first["attempt"]),
                     None)
        last_step = max(old)
        catch = next((e for e in all_steps if e["ts"] > t and
                      e["attempt"] > a and e["step"] > last_step), None)
        k.update({
            "last_step": last_step, "first_step": first["step"],
            "new_attempt": first["attempt"],
            "resumed_from": start["resumed_from"] if start else None,
            "restart_started_s": start["ts"] - t if start else None,
            "new_process_s": (start["process_start"] - t
                              if start and "process_start" in start else None),
            "recovery_s": first["ts"] - t,
            "catchup_s": catch["ts"] - t if catch else None,
            "steps_redone": last_step + 1 - first["step"],
        })
    text = open(out_log, errors="replace").read()
    result = {
        "side": "torch", "command": " ".join(cmd), "kills": kills,
        "ckpt_every": args.ckpt_every,
        "torch_version": torch_version(),
        "recovery_s": summary([k.get("recovery_s") for k in kills]),
        "catchup_s": summary([k.get("catchup_s") for k in kills]),
        "restart_started_s": summary([k.get("restart_started_s") for k in kills]),
        "new_process_s": summary([k.get("new_process_s") for k in kills]),
        "steps_redone": summary([k.get("steps_redone") for k in kills]),
        "attempts": len(starts),
        "worker_VmRSS": summary(mem),
        "torchrun_log_tail": text[-3000:],
        "error": error,
        "ok": ok and all(k.get("recovered") for k in kills),
    }
    if not args.keep:
        subprocess.run(["rm", "-rf", tmp])
    else:
        result["tmp"] = tmp
    return result


def torch_version():
    r = subprocess.run(["/usr/bin/python3", "-c",
                        "import torch; print(torch.__version__)"],
                       capture_output=True, text=True, timeout=60)
    return r.stdout.strip() or None


# ---- report ---------------------------------------------------------------

def fmt_s(v):
    return "n/a" if v is None else (f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s")


def report(args):
    herd = json.load(open(args.herd))
    torch = json.load(open(args.torch)) if args.torch and os.path.exists(args.torch) else None
    for side in (herd, torch):  # a side that failed early has no numbers
        for key in ("recovery_s", "catchup_s", "steps_redone",
                    "restart_started_s"):
            if side is not None and key not in side:
                side[key] = summary([])
    herd.setdefault("memory", {})
    for key in ("other_member_failures", "host_cooldowns",
                "workers_restarted", "generations"):
        herd.setdefault(key, None)
    if torch is not None:
        torch.setdefault("attempts", None)
        torch.setdefault("ckpt_every", None)
    out = {"bench": "recovery", "command": args.command,
           "host": {"nproc": os.cpu_count(), "uname": " ".join(os.uname())},
           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "herd": herd, "torch": torch,
           "torch_skipped": args.torch_skipped or None}
    hp = herd["recovery_s"]["p50"]
    tp = torch["recovery_s"]["p50"] if torch else None
    out["ratio_p50"] = tp / hp if hp and tp else None
    out["targets"] = {"herd_p50_le_1s": hp is not None and hp <= 1.0,
                      "ratio_ge_10": out["ratio_p50"] is not None and
                      out["ratio_p50"] >= 10}
    mem = herd["memory"]
    own = mem.get("libherd_own_bytes", {})
    out["targets"]["libherd_own_lt_32MiB"] = (own.get("max") is not None and
                                              own["max"] < 32 * MIB)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")

    rows = []
    for name, side in (("herd (gloo, elastic)", herd), ("torchrun (DDP, gloo)", torch)):
        if not side:
            rows.append(f"| {name} | skipped: {args.torch_skipped} | | | | | |")
            continue
        r, c, s = side["recovery_s"], side["catchup_s"], side["steps_redone"]
        lost = side.get("unrecovered_kills") or 0
        n = f"{r['n']}" + (f" (+{lost} not recovered)" if lost else "")
        rows.append(f"| {name} | {n} | {fmt_s(r['p50'])} | {fmt_s(r['max'])} "
                    f"| {fmt_s(c['p50'])} | {s['p50']:g} | {s['max']:g} |"
                    if r["n"] else f"| {name} | 0 | | | | | |")
    ratio = out["ratio_p50"]
    md = ["# bench/recovery", "",
          f"`{args.command}`, {out['time']}, {os.cpu_count()} CPUs.", "",
          "| job | kills | kill -> next step p50 | max | back to pre-kill step p50 "
          "| steps redone p50 | max |", "|---|---|---|---|---|---|---|", *rows, "",
          f"Ratio torchrun/herd p50: {'n/a' if ratio is None else f'{ratio:.1f}x'}"
          " (targets: herd p50 <= 1 s, ratio >= 10x).", ""]
    if mem.get("samples"):
        md += ["Herd worker memory (each herd-train, sampled before each kill, "
               f"{mem['samples']} samples):", "",
               "| VmRSS p50 | max | RssAnon p50 | RssFile p50 | buffers "
               "| libherd own (RssAnon - buffers) p50 | max |",
               "|---|---|---|---|---|---|---|",
               f"| {mem['VmRSS']['p50'] / MIB:.1f} MiB | {mem['VmRSS']['max'] / MIB:.1f} MiB "
               f"| {mem['RssAnon']['p50'] / MIB:.1f} MiB | {mem['RssFile']['p50'] / MIB:.1f} MiB "
               f"| {mem['buffers_total_bytes'] / MIB:.1f} MiB "
               f"| {own['p50'] / MIB:.1f} MiB | {own['max'] / MIB:.1f} MiB |", "",
               f"Method: {mem['method']}", ""]
    md += [f"herd: {herd['other_member_failures']} member failures besides the "
           f"kills, {herd['host_cooldowns']} host cool-downs, "
           f"{herd['workers_restarted']} workers restarted, "
           f"{herd['generations']} generations, "
           f"{len(herd.get('jobs') or [])} herd run job(s)."]
    for j in herd.get("jobs") or []:
        if j.get("error"):
            md += ["", f"herd job {j['job']} failed after {j['kills']} kill(s): "
                   f"{j['error']}; {j['other_member_failures']} other member "
                   f"failures ({', '.join(j['other_member_failure_reasons'][:4])})"
                   "; the next job took the remaining kills."]
    if torch:
        md += [f"torch: {torch['attempts']} attempts, checkpoint every "
               f"{torch['ckpt_every']} steps; kill -> new worker processes "
               f"started p50 {fmt_s((torch.get('new_process_s') or {}).get('p50'))} "
               f"(max {fmt_s((torch.get('new_process_s') or {}).get('max'))}), "
               f"-> new group training (imports, data, checkpoint, DDP) p50 "
               f"{fmt_s(torch['restart_started_s']['p50'])}; "
               "worker VmRSS p50 "
               f"{((torch.get('worker_VmRSS') or {}).get('p50') or 0) / MIB:.1f} MiB."]
    with open(args.md, "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("side", choices=["herd", "torch", "report"])
    ap.add_argument("--bin")
    ap.add_argument("--data")
    ap.add_argument("--kills", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--max-restarts", type=int, default=10)
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--min-gap", type=float, default=2.0,
                    help="seconds of training after a recovery, at least")
    ap.add_argument("--max-gap", type=float, default=4.0)
    ap.add_argument("--rejoin-wait", type=float, default=15.0,
                    help="herd: at most this long for the newcomer to rejoin")
    ap.add_argument("--recover-timeout", type=float, default=60.0)
    ap.add_argument("--deadline", type=float, default=600.0,
                    help="whole side, seconds")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--max-jobs", type=int, default=3,
                    help="herd: fresh herd runs allowed when a job fails")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--herd")
    ap.add_argument("--torch")
    ap.add_argument("--torch-skipped", default="")
    ap.add_argument("--json")
    ap.add_argument("--md")
    ap.add_argument("--command", default="")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    random.seed(args.seed)
    if args.data:
        args.data = os.path.abspath(args.data)
    if args.bin:
        args.bin = os.path.abspath(args.bin)
    if args.side == "report":
        return report(args)
    try:
        result = run_herd(args) if args.side == "herd" else run_torch(args)
    except RuntimeError as e:
        log(f"{args.side}: {e}")
        result = {"side": args.side, "ok": False, "error": str(e)}
    result["seed"] = args.seed
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
