#!/usr/bin/python3
"""Checks a finished multi-host job from its run directory.

events.jsonl and summary.json are the job's record (README, "The run
directory contract"). This script asserts what every cluster test needs:
the job finished, its first generation was ONE world of the expected size
whose members came from distinct hosts (never N worlds of one), committed
steps 1..final each once with generations never going back (no split brain),
every sample of every epoch used exactly once, and optionally the accuracy
against a fault-free baseline and the time from a fault to the next
committed step.

Usage: job_check.py RUN_DIR --world N --hosts N [--min-generations G]
         [--baseline FILE | --write-baseline FILE]
         [--fault-ts T --recovery-max S] [--epochs E]
Exit 0 and one summary line when every check holds; exit 1 naming the first
one that does not.
"""
import argparse
import json
import sys
from collections import Counter


def fail(msg):
    print(f"job_check: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def load(run):
    try:
        events = [json.loads(line) for line in open(f"{run}/events.jsonl")]
        summary = json.load(open(f"{run}/summary.json"))
    except (OSError, ValueError) as e:
        fail(f"cannot read the run dir {run}: {e}")
    return events, summary


def first_world(events):
    """Members joined before the first generation event, and its size."""
    members = []
    for e in events:
        if e["event"] == "member_joined":
            members.append(e)
        elif e["event"] == "generation":
            return members, e["world_size"]
    fail("no generation formed")


def check_steps(events, final, epochs):
    steps = [e for e in events if e["event"] == "step"]
    numbers = Counter(e["step"] for e in steps)
    twice = [s for s, n in numbers.items() if n > 1]
    if twice:
        fail(f"steps committed twice: {twice[:10]}")
    missing = sorted(set(range(1, final + 1)) - set(numbers))
    if missing:
        fail(f"committed steps not 1..{final}: missing {missing[:20]}")
    last_gen = 0
    for e in sorted(steps, key=lambda e: e["step"]):
        if e["generation"] < last_gen:
            fail(f"step {e['step']} committed by generation {e['generation']}"
                 f" after generation {last_gen} had committed (split brain)")
        last_gen = e["generation"]
    used = Counter()
    for e in steps:
        for i in range(e["sample_begin"], e["sample_end"]):
            used[(e["epoch"], i)] += 1
    if used and max(used.values()) > 1:
        fail("a sample was used twice in one epoch")
    for ep in range(epochs):
        n = sum(1 for k in used if k[0] == ep)
        if n != 60000:
            fail(f"epoch {ep}: {n} distinct samples, want 60000")
    return steps


def recovery_seconds(steps, fault_ts):
    after = [e["ts"] for e in steps if e["ts"] > fault_ts]
    if not after:
        fail("no step committed after the fault")
    return min(after) - fault_ts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--world", type=int, required=True)
    ap.add_argument("--hosts", type=int, required=True)
    ap.add_argument("--min-generations", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=0,
                    help="epochs that must each see all 60000 samples")
    ap.add_argument("--baseline")
    ap.add_argument("--write-baseline")
    ap.add_argument("--fault-ts", type=float)
    ap.add_argument("--recovery-max", type=float, default=1.0)
    a = ap.parse_args()

    events, summary = load(a.run)
    if summary.get("ok") is not True:
        fail(f"job not ok: {summary.get('reason')}")
    members, world = first_world(events)
    if world != a.world:
        fail(f"first generation has world size {world}, want {a.world}")
    hosts = {m["host"] for m in members}
    if len(hosts) != a.hosts:
        fail(f"first generation's members came from {sorted(hosts)}, "
             f"want {a.hosts} distinct hosts")
    gens = [e["generation"] for e in events if e["event"] == "generation"]
    if len(gens) < a.min_generations:
        fail(f"generations {gens}, want at least {a.min_generations}")
    steps = check_steps(events, summary["final_step"], a.epochs)
    acc = summary["test_accuracy"]
    line = (f"world {world} on hosts {sorted(hosts)}; generations {gens}; "
            f"{summary['final_step']} steps once each; accuracy {acc:.4f}")
    if a.baseline:
        base = float(open(a.baseline).read())
        if abs(acc - base) > 0.005:
            fail(f"accuracy {acc:.4f} differs from the fault-free {base:.4f} "
                 "by more than 0.5 points")
        line += f" (fault-free {base:.4f})"
    if a.write_baseline:
        with open(a.write_baseline, "w") as f:
            f.write(f"{acc}\n")
    if a.fault_ts is not None:
        took = recovery_seconds(steps, a.fault_ts)
        if took > a.recovery_max:
            fail(f"next committed step {took:.3f} s after the fault, "
                 f"want <= {a.recovery_max} s")
        line += f"; next step {took * 1000:.0f} ms after the fault"
    print("job_check: " + line)


if __name__ == "__main__":
    main()
