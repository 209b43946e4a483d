"""bench_train_torch.py - the PyTorch side of bench/bench_train.c: trains the PyTorch twin of the engine
model (tools/twin/model.py, eager PyTorch, float32, CPU) on the same byte data with the same batch shape, and
prints one line "torch_tokens_per_s X median_tokens_per_s Y loss L" (X over all timed steps, Y the median of the
per-step rates, which a few disturbed steps on a shared machine do not move). Same optimizer work as umoe train: AdamW (decay on matrices only),
global-norm clipping at 1.0, warmup + cosine schedule. The first 2 steps are warm-up and not timed.
Usage: python3 bench/bench_train_torch.py MODEL.json DATA STEPS B T THREADS
Does not: check correctness (the reference tests do) or write checkpoints."""
import math
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "twin"))
from model import cfg_from_json, forward, init_params  # noqa: E402


def main():
    model, data, steps, B, T, threads = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
    torch.set_num_threads(threads)
    cfg = cfg_from_json(model)
    cfg.T = T
    P = {k: v.requires_grad_(True) for k, v in init_params(cfg, 1).items()}
    decay = [p for n, p in P.items() if p.dim() >= 2]
    other = [p for n, p in P.items() if p.dim() < 2 and not n.endswith("e_score_correction_bias")]
    lr = 1e-3
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8)
    raw = torch.frombuffer(bytearray(open(data, "rb").read()), dtype=torch.uint8).long()
    W = T + 1 + cfg.mtp
    g = torch.Generator().manual_seed(1)
    warm = 2
    step_s = []
    for step in range(steps + warm):
        ts = time.perf_counter()
        if step == warm:
            t0 = ts
        starts = torch.randint(0, raw.numel() - W, (B,), generator=g)
        tokens = torch.stack([raw[s:s + W] for s in starts.tolist()])
        for group in opt.param_groups:  # warmup + cosine, as src/train/schedule.c
            w = max(1, steps // 10)
            group["lr"] = lr * (step + 1) / w if step < w else \
                0.1 * lr + 0.45 * lr * (1 + math.cos(math.pi * (step - w) / max(1, steps + warm - w)))
        opt.zero_grad(set_to_none=True)
        out = forward(cfg, P, tokens)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(list(P.values()), 1.0)
        opt.step()
        if step >= warm:
            step_s.append(time.perf_counter() - ts)
    dt = time.perf_counter() - t0
    med = statistics.median(step_s)
    print(f"torch_tokens_per_s {steps * B * T / dt:.1f} median_tokens_per_s {B * T / med:.1f} "
          f"loss {out['loss'].item():.4f}")


if __name__ == "__main__":
    main()
