#!/usr/bin/python3
"""Step statistics from herd-train --timeline files (Chrome trace, one file
per rank: FILE for rank 0, FILE.rankN / FILE-stem.rankN.ext for the others).

Every complete ("X") event carries args.step. Per rank and per step:

  allreduce  total duration of the communication phases ("comm", or any
             name with "allreduce"/"all-reduce"/"all_reduce" in it)
  exposed    the part of those intervals NOT covered by a compute phase
             ("compute", "forward", "backward"), i.e. communication the
             step had to wait for; equal to allreduce when nothing overlaps
  compute, data, optimizer, step: phase durations

With more than one rank, each step's communication is also split into
  wait_for_peers   from this rank's first communication to the last rank's
                   (the other ranks were still computing: skew, not wire)
  after_arrival    from the last rank's arrival to this rank's end of
                   communication (the all-reduce itself)
(ranks on one machine, or machines with synchronised clocks.)

Throughput is taken from rank 0's "step" events: global batch x steps after
the first SKIP, divided by the wall time from the start of step SKIP+1 to the
end of the last step (gaps between steps included).

Usage: timeline_stats.py TIMELINE --ranks N --batch B [--skip S]
Prints one JSON object.
"""
import argparse
import json
import os
import statistics
import sys
from collections import defaultdict

COMM_WORDS = ("allreduce", "all-reduce", "all_reduce")
COMPUTE_NAMES = ("compute", "forward", "backward")


def rank_path(path, rank):
    """Mirrors herd_timeline_rank_path (trainer/timeline.c)."""
    if rank <= 0:
        return path
    slash = path.rfind("/")
    dot = path.rfind(".")
    if dot < 0 or dot < slash or dot == 0 or path[dot - 1] == "/":
        return f"{path}.rank{rank}"
    return f"{path[:dot]}.rank{rank}{path[dot:]}"


def is_comm(name):
    n = name.lower()
    return n == "comm" or any(w in n for w in COMM_WORDS)


def is_compute(name):
    return name.lower() in COMPUTE_NAMES


def union(intervals):
    out = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def length(intervals):
    return sum(b - a for a, b in intervals)


def subtract(base, cut):
    """Length of union(base) minus union(cut)."""
    base, cut = union(base), union(cut)
    total = 0.0
    for a, b in base:
        covered = 0.0
        for c, d in cut:
            lo, hi = max(a, c), min(b, d)
            if hi > lo:
                covered += hi - lo
        total += (b - a) - covered
    return total


def load(path):
    with open(path) as f:
        events = json.load(f)
    steps = defaultdict(lambda: defaultdict(list))
    names = set()
    for e in events:
        if e.get("ph") != "X" or "step" not in e.get("args", {}):
            continue
        a = float(e["ts"]) / 1e6
        b = a + float(e.get("dur", 0)) / 1e6
        steps[int(e["args"]["step"])][e["name"]].append((a, b))
        names.add(e["name"])
    return steps, names


def mean_ms(values):
    return round(1e3 * statistics.fmean(values), 3) if values else None


def rank_stats(steps, skip):
    keep = sorted(s for s in steps if s > skip and "step" in steps[s])
    per = defaultdict(list)
    overlapped_steps = 0
    for s in keep:
        ph = steps[s]
        comm = [iv for n, ivs in ph.items() if is_comm(n) for iv in ivs]
        compute = [iv for n, ivs in ph.items() if is_compute(n) for iv in ivs]
        ar = length(union(comm))
        exposed = subtract(comm, compute)
        if ar - exposed > 1e-6:
            overlapped_steps += 1
        per["allreduce"].append(ar)
        per["exposed_comm"].append(exposed)
        for n in ("step", "data", "compute", "optimizer"):
            if n in ph:
                per[n].append(length(union(ph[n])))
    out = {f"{k}_ms": mean_ms(v) for k, v in per.items()}
    out["steps"] = len(keep)
    out["steps_with_any_overlap"] = overlapped_steps
    return out, keep


def arrival_split(loaded, skip):
    """Mean wait_for_peers and after_arrival in ms (see the docstring)."""
    wait, after = [], []
    common = set.intersection(*(set(st) for st in loaded))
    for s in sorted(x for x in common if x > skip):
        spans = []
        for st in loaded:
            comm = [iv for n, ivs in st[s].items() if is_comm(n) for iv in ivs]
            if not comm:
                break
            spans.append((min(a for a, _ in comm), max(b for _, b in comm)))
        if len(spans) != len(loaded):
            continue
        last = max(a for a, _ in spans)
        for a, b in spans:
            wait.append(last - a)
            after.append(max(0.0, b - last))
    return mean_ms(wait), mean_ms(after)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("timeline")
    ap.add_argument("--ranks", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True, help="global batch")
    ap.add_argument("--skip", type=int, default=20)
    args = ap.parse_args()

    ranks = {}
    phase_names = set()
    rank0_steps = None
    loaded = []
    for r in range(args.ranks):
        path = rank_path(args.timeline, r)
        if not os.path.exists(path):
            sys.exit(f"timeline_stats: missing {path}")
        steps, names = load(path)
        loaded.append(steps)
        phase_names |= names
        ranks[r], keep = rank_stats(steps, args.skip)
        if r == 0:
            rank0_steps = (steps, keep)
    steps, keep = rank0_steps
    if len(keep) < 2:
        sys.exit("timeline_stats: too few steps after --skip")
    start = min(a for a, _ in steps[keep[0]]["step"])
    end = max(b for _, b in steps[keep[-1]]["step"])
    mean_over = lambda key: round(statistics.fmean(
        ranks[r][key] for r in ranks if ranks[r].get(key) is not None), 3)
    result = {
        "phases": sorted(phase_names),
        "steps_measured": len(keep),
        "skip": args.skip,
        "samples_per_second": round(args.batch * len(keep) / (end - start), 1),
        "step_wall_ms": round(1e3 * (end - start) / len(keep), 3),
        "allreduce_ms_per_step": mean_over("allreduce_ms"),
        "exposed_comm_ms_per_step": mean_over("exposed_comm_ms"),
        "compute_ms_per_step": mean_over("compute_ms"),
        "per_rank": ranks,
    }
    if args.ranks > 1:
        wait, after = arrival_split(loaded, args.skip)
        result["wait_for_peers_ms_per_step"] = wait
        result["allreduce_after_arrival_ms_per_step"] = after
    ar = result["allreduce_ms_per_step"]
    result["exposed_fraction"] = (round(result["exposed_comm_ms_per_step"] / ar, 3)
                                  if ar else None)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
