#!/usr/bin/python3
"""PyTorch DDP over Gloo: the same job as herd-train in bench/multihost/run.sh.

One process per host, started with RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT (and GLOO_SOCKET_IFNAME) in the environment; no launcher.

Same model as herd-train --hidden H1,H2 (trainer/mlp.c): Linear layers
784 -> H1 -> H2 -> 10 with ReLU between, He-normal weights, zero biases,
pixels normalised with herd's table ((v/255 - 0.2860) / 0.3530), softmax
cross-entropy averaged over the global batch (DDP averages the per-rank
means; every rank holds batch/world samples). SGD with momentum and coupled
weight decay, constant learning rate, like herd's `--optimizer sgd
--schedule constant --warmup-steps 0`. One intra-op and one inter-op thread.

Per step rank 0 records: start, data (gather + normalise), forward + loss,
backward (DDP's bucketed all-reduce runs in hooks during backward; the call
returns once every bucket is reduced), optimizer. After the timed steps it
runs --nosync-steps more steps under model.no_sync() (no all-reduce) to give
the backward time without communication, so backward - backward_nosync
estimates DDP's exposed communication. Rank 0 writes everything as JSON.

Usage: ddp_train.py --data FILE --steps N --out FILE [--hidden 1024,1024]
         [--batch 128] [--lr 0.05] [--momentum 0.9] [--weight-decay 1e-4]
         [--seed 42] [--skip 20] [--nosync-steps 20] [--timeout 120]
"""
import argparse
import datetime
import json
import os
import statistics
import time

import h5py
import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

PIXEL_MEAN, PIXEL_STD = 0.2860, 0.3530


def build_model(dims):
    layers = []
    for i in range(len(dims) - 1):
        lin = nn.Linear(dims[i], dims[i + 1])
        nn.init.normal_(lin.weight, std=(2.0 / dims[i]) ** 0.5)
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if i + 2 < len(dims):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--hidden", default="1024,1024")
    ap.add_argument("--batch", type=int, default=128, help="global batch")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--skip", type=int, default=20)
    ap.add_argument("--nosync-steps", type=int, default=20)
    ap.add_argument("--timeout", type=int, default=120)
    # bf16_compress_hook needs CUDA and NCCL in torch 1.13; fp16 works on Gloo.
    ap.add_argument("--compress", choices=["none", "fp16"], default="none",
                    help="DDP comm hook: gradients on the wire as float16")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if args.batch % world:
        raise SystemExit(f"batch {args.batch} not divisible by world {world}")
    per_rank = args.batch // world

    with h5py.File(args.data, "r") as f:
        images = torch.from_numpy(np.ascontiguousarray(f["train/images"][...]))
        labels = torch.from_numpy(f["train/labels"][...].astype(np.int64))
    count = images.shape[0]
    pixels = images[0].numel()
    images = images.reshape(count, pixels)
    table = ((torch.arange(256, dtype=torch.float32) / 255.0) - PIXEL_MEAN) / PIXEL_STD

    dist.init_process_group("gloo", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=args.timeout))
    torch.manual_seed(args.seed)
    dims = [pixels] + [int(h) for h in args.hidden.split(",")] + [10]
    model = DDP(build_model(dims))  # broadcasts rank 0's weights
    if args.compress != "none":
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
        model.register_comm_hook(dist.group.WORLD, default_hooks.fp16_compress_hook)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                          weight_decay=args.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)
    perm = torch.randperm(count, generator=gen)
    steps_per_epoch = count // args.batch

    def one_step(step, rec):
        t0 = time.perf_counter()
        s = step % steps_per_epoch
        if s == 0 and step:
            perm.copy_(torch.randperm(count, generator=gen))
        lo = s * args.batch + rank * per_rank
        idx = perm[lo:lo + per_rank]
        x = table[images[idx].long()]
        y = labels[idx]
        t1 = time.perf_counter()
        loss = loss_fn(model(x), y)
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        rec.append((t0, t1, t2, t3, t4, float(loss)))

    dist.barrier()
    timed = []
    for step in range(args.steps):
        one_step(step, timed)
    nosync = []
    with model.no_sync():
        for step in range(args.steps, args.steps + args.nosync_steps):
            one_step(step, nosync)
    dist.barrier()

    if rank == 0:
        keep = timed[args.skip:]
        if len(keep) < 2:
            raise SystemExit("too few steps after --skip")
        wall = keep[-1][4] - keep[0][0]
        ms = lambda rows, a, b: round(1e3 * statistics.fmean(r[b] - r[a] for r in rows), 3)
        ns_keep = nosync[min(5, len(nosync) // 2):]  # skip a few: warm caches
        out = {
            "world_size": world, "compress": args.compress, "global_batch": args.batch, "per_rank_batch": per_rank,
            "params": params, "dims": dims, "steps": args.steps, "skip": args.skip,
            "steps_measured": len(keep),
            "samples_per_second": round(args.batch * len(keep) / wall, 1),
            "step_wall_ms": round(1e3 * wall / len(keep), 3),
            "data_ms": ms(keep, 0, 1), "forward_ms": ms(keep, 1, 2),
            "backward_with_allreduce_ms": ms(keep, 2, 3), "optimizer_ms": ms(keep, 3, 4),
            "nosync_steps_measured": len(ns_keep),
            "backward_nosync_ms": ms(ns_keep, 2, 3) if ns_keep else None,
            "loss_first": timed[0][5], "loss_last_rank0": timed[-1][5],
            "torch": torch.__version__, "threads": torch.get_num_threads(),
        }
        if ns_keep:
            out["exposed_comm_estimate_ms"] = round(
                out["backward_with_allreduce_ms"] - out["backward_nosync_ms"], 3)
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
        print(json.dumps(out))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
