#!/usr/bin/python3
"""bench/recovery: the PyTorch peer of herd-train, started by torchrun.

The same model and recipe as herd-train's defaults: MLP 784-256-128-10,
AdamW (lr 1e-3, weight decay 1e-4), linear warmup (200 steps) then cosine,
global batch 128 split over the ranks, Fashion-MNIST read with h5py from the
file `herd data import fashion-mnist` writes, pixels normalised like herd
((v/255 - 0.2860) / 0.3530). DDP over gloo, one thread per process.

Fault tolerance is the usual torchrun pattern: rank 0 saves a checkpoint
every --ckpt-every steps (torch.save to a temporary file, then os.replace,
so the file is always whole); every (re)started worker group resumes from it.
Rank 0 appends one JSON line per completed step to --step-log:
  {"ts": unix time after optimizer.step(), "step": N, "attempt": A, "world": W}
(A is TORCHELASTIC_RESTART_COUNT), and one "start" line per attempt when
training begins: {"event": "start", "ts", "attempt", "resumed_from",
"process_start"} (process_start: when this Python process began, before
importing torch). The
bench driver (recovery.py) reads that log.
"""
import time

PROCESS_START = time.time()  # before the heavy imports

import argparse
import json
import math
import os

import h5py
import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

MEAN, STD = 0.2860, 0.3530


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="herd's fashion-mnist.h5")
    p.add_argument("--ckpt", required=True, help="checkpoint file")
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--step-log", required=True)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch", type=int, default=128, help="global batch")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup-steps", type=int, default=200)
    p.add_argument("--seed", type=int, default=42)
    return p.parse_args()


def lr_factor(step, warmup, total):
    if step < warmup:
        return (step + 1) / warmup
    span = total - warmup
    progress = (step - warmup) / span if span > 0 else 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def main():
    args = parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")  # env:// from torchrun
    rank, world = dist.get_rank(), dist.get_world_size()
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))

    with h5py.File(args.data, "r") as f:
        images = torch.from_numpy(np.ascontiguousarray(f["train/images"][:]))
        labels = torch.from_numpy(f["train/labels"][:].astype(np.int64))
    count = images.shape[0]
    images = images.reshape(count, -1)

    torch.manual_seed(args.seed)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                          nn.ReLU(), nn.Linear(128, 10))
    ddp = DDP(model)
    optim = torch.optim.AdamW(model.parameters(), lr=args.lr,
                              weight_decay=args.weight_decay)
    steps_per_epoch = (count + args.batch - 1) // args.batch
    total = args.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: lr_factor(s, args.warmup_steps, total))
    loss_fn = nn.CrossEntropyLoss()

    step = 0
    if os.path.exists(args.ckpt):  # every rank loads the same file
        state = torch.load(args.ckpt)
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        step = state["step"]

    log = open(args.step_log, "a", buffering=1) if rank == 0 else None
    if log:
        log.write(json.dumps({"event": "start", "ts": time.time(),
                              "attempt": attempt, "resumed_from": step,
                              "process_start": PROCESS_START,
                              "world": world}) + "\n")

    perm_epoch, perm = -1, None
    while step < total:
        epoch, in_epoch = divmod(step, steps_per_epoch)
        if epoch != perm_epoch:
            g = torch.Generator()
            g.manual_seed(args.seed * 1000003 + epoch)
            perm, perm_epoch = torch.randperm(count, generator=g), epoch
        begin = in_epoch * args.batch
        idx = perm[begin:min(begin + args.batch, count)]
        mine = idx[rank::world]  # this rank's share of the global batch
        x = (images[mine].float() / 255.0 - MEAN) / STD
        y = labels[mine]
        optim.zero_grad(set_to_none=True)
        # DDP averages over ranks; scale so the update is the global mean.
        loss = loss_fn(ddp(x), y) * (len(mine) * world / len(idx))
        loss.backward()
        optim.step()
        sched.step()
        step += 1
        if log:
            log.write(json.dumps({"ts": time.time(), "step": step,
                                  "attempt": attempt, "world": world}) + "\n")
        if rank == 0 and args.ckpt_every > 0 and step % args.ckpt_every == 0:
            tmp = f"{args.ckpt}.tmp.{os.getpid()}"
            torch.save({"model": model.state_dict(),
                        "optim": optim.state_dict(),
                        "sched": sched.state_dict(), "step": step}, tmp)
            os.replace(tmp, args.ckpt)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
