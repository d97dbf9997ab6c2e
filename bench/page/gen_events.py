#!/usr/bin/env python3
"""Writes the events.jsonl a long, large herd job would leave: HOURS of
STEPS_PER_S steps with WORKERS ranks (a `ranks` event every 5 s of the 64
slowest, as the coordinator writes), a checkpoint every 500 steps, an
epoch_end every EPOCH_S seconds and a failure with its re-forming every
FAIL_S seconds. Seeded: the same arguments give the same file.
Usage: gen_events.py OUT_DIR [--hours 24] [--workers 1000] [--steps-per-s 10]"""
import argparse
import os
import random

# The default model (trainer/flops.c) and a plausible per-worker peak, so the
# step events carry the MFU fields the coordinator writes.
FLOP_PER_SAMPLE = 1007104
PEAK_PER_WORKER = 20e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--workers", type=int, default=1000)
    ap.add_argument("--steps-per-s", type=float, default=10)
    ap.add_argument("--epoch-s", type=float, default=900)
    ap.add_argument("--fail-s", type=float, default=600)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    os.makedirs(a.out_dir, exist_ok=True)
    t0, n = 1796000000.0, a.workers
    end = t0 + a.hours * 3600
    dt = 1.0 / a.steps_per_s
    with open(os.path.join(a.out_dir, "events.jsonl"), "w") as f:
        w = f.write
        w('{"ts":%.6f,"event":"coordinator_started","version":"0.1.0","job_id":"budget",'
          '"host":"coord","min_workers":%d,"max_workers":%d,"heartbeat_interval_ms":100,'
          '"heartbeat_misses":20,"join_timeout_ms":120000,"host_cooldown_failures":3,'
          '"continue_run":false,"curve":true,"endpoint":"tcp://10.0.0.1:29400"}\n'
          % (t0, n - 50, n))
        w('{"ts":%.6f,"event":"http","url":"http://10.0.0.1:29401/"}\n' % t0)
        for r in range(n):
            w('{"ts":%.6f,"event":"member_joined","rank":%d,"pid":%d,"host":"node%04d"}\n'
              % (t0 + 1, r, 1000 + r, r // 8))
        gen, world, step, epoch = 1, n, 0, 0
        w('{"ts":%.6f,"event":"generation","generation":1,"world_size":%d,"adopted":false}\n'
          % (t0 + 1, n))
        t, next_ranks, next_epoch, next_fail = t0 + 2, t0 + 2, t0 + a.epoch_s, t0 + a.fail_s
        while t < end:
            step += 1
            sps = world * 250 * (0.9 + rnd.random() * 0.2)
            w('{"ts":%.6f,"event":"step","step":%d,"epoch":%d,"generation":%d,'
              '"world_size":%d,"loss":%.15g,"samples_per_second":%.15g,'
              '"sample_begin":%d,"sample_end":%d,"model_flops_per_second":%.15g,"mfu":%.15g}\n'
              % (t, step, epoch, gen, world, 2.3 / (1 + step / 5000) + rnd.random() * 0.05,
                 sps, step * 256, step * 256 + 256, sps * FLOP_PER_SAMPLE,
                 sps * FLOP_PER_SAMPLE / (world * PEAK_PER_WORKER)))
            if step % 500 == 0:
                w('{"ts":%.6f,"event":"checkpoint_committed","step":%d,'
                  '"path":"/shared/run/ckpt/ckpt-%010d.h5"}\n' % (t, step, step))
            if t >= next_ranks:
                next_ranks += 5
                rows = ",".join("[%d,%d,%d,%d,%d,%d]" % (
                    r, 250 * (0.8 + rnd.random() * 0.3), 1e5 + rnd.random() * 2e4,
                    8e4 + rnd.random() * 5e3, 15e3 + rnd.random() * 1e4, 2e3 + rnd.random() * 1e3)
                    for r in sorted(rnd.sample(range(world), min(64, world))))
                w('{"ts":%.6f,"event":"ranks","step":%d,"n_ranks":%d,'
                  '"fields":"rank,samples_per_second,step_us,compute_us,comm_us,data_us",'
                  '"ranks":[%s]}\n' % (t, step, world, rows))
            if t >= next_epoch:
                next_epoch += a.epoch_s
                w('{"ts":%.6f,"event":"epoch_end","epoch":%d,"test_accuracy":%.4f,'
                  '"test_loss":%.4f}\n' % (t, epoch, 0.5 + 0.4 * (1 - 1 / (epoch + 2)), 0.3))
                epoch += 1
            if t >= next_fail:
                next_fail += a.fail_s
                r = rnd.randrange(world)
                w('{"ts":%.6f,"event":"member_failed","rank":%d,"pid":%d,'
                  '"signal":"connection_closed","reason":"connection lost","host":"node%04d"}\n'
                  % (t, r, 5000 + step, r // 8))
                gen += 1
                t += 0.2
                w('{"ts":%.6f,"event":"generation","generation":%d,"world_size":%d,'
                  '"adopted":false}\n' % (t, gen, world - 1))
                w('{"ts":%.6f,"event":"member_joined","rank":%d,"pid":%d,"host":"node%04d"}\n'
                  % (t + 3, world - 1, 9000 + step, r // 8))
            t += dt
        w('{"ts":%.6f,"event":"done","ok":true,"reason":null}\n' % t)


if __name__ == "__main__":
    main()
