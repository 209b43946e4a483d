#!/usr/bin/env python3
"""gen_fixtures.py - writes the reference fixtures that tests/unit/test_model_reference.c compares the C
engine with: for each case, the config, the input tokens, every parameter (float32, as the twin initialised
them), the logits, the losses, every parameter's gradient, the router top-k ids and weights of every MoE
layer, and the losses of 10 AdamW steps with fixed hyper-parameters (no schedule, no clipping).
The twin computes in float64 from the float32 parameters, so the fixtures are the exact answer for those
parameters, rounded to float32.

Usage: python3 tools/twin/gen_fixtures.py [OUT_DIR]   (default tests/fixtures). Needs PyTorch (CPU).

File format (.umfx, little-endian; documented in docs/engine-model.md):
  "UMFX" | u32 version (1) | u32 n_tensors | n_tensors x { u32 name_len | name (UTF-8) | u32 dtype (0 f32,
  1 i32) | u32 ndim | u64 shape[ndim] | data (numel x 4 bytes) }
Names: cfg.<spec_model field>, tokens, param.<HF name>, grad.<HF name>, logits, loss.{total,lm,mtp,aux,z},
router.<moe slot>.{idx,w}, train.{lr,beta1,beta2,eps,wd,gamma,steps}, train.loss (steps).
Preset-shaped cases (model_preset_*.umfx, the shipped configs/models/tiny-moe.json and two variants) are too
big to store every tensor: their parameters come from the portable hashed init (model.init_params_hashed,
seed init.seed) and are checked by paramstat.<name> = [sum, sum of squares]; their gradients are stored as
gradstat.<name> = [||g||_2, <g, r>] with r = 2 hash_uniform(777 + 1000003 (k+1)) - 1 for tensor k.
"""
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import (Cfg, adamw_step, cfg_from_json, forward, hash_uniform, init_params,  # noqa: E402
                   init_params_hashed, layout, score_bias_update)

MAGIC, VERSION = b"UMFX", 1
ATTN = {"mha": 0, "gqa": 1, "mla": 2}      # spec_attn_kind
NORM = {"pre": 0, "sandwich": 1}           # spec_norm_kind
SCORE = {"softmax": 0, "sigmoid": 1}       # spec_score_kind
TRAIN = dict(lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-8, wd=0.1, gamma=1e-3, steps=10)
MIN_GAP = 1e-4  # smallest allowed margin between the K-th and (K+1)-th selection score (no near ties)
MIN_GAP_TRAIN = 2e-5  # the same during the 10 steps (float32 drift of the C run is far below this)


class NearTie(Exception):
    pass


def write_umfx(path, tensors):
    with open(path, "wb") as f:
        f.write(MAGIC + struct.pack("<II", VERSION, len(tensors)))
        for name, t in tensors:
            t = t.detach().contiguous()
            if t.dtype in (torch.int32, torch.int64):
                dt, t = 1, t.to(torch.int32)
            else:
                dt, t = 0, t.to(torch.float32)
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<II", dt, t.dim()))
            f.write(struct.pack(f"<{t.dim()}Q", *t.shape))
            f.write(t.numpy().astype("<i4" if dt else "<f4").tobytes())


def cfg_tensors(cfg):
    out = []
    for k, v in cfg.__dict__.items():
        if k == "attn":
            v = ATTN[v]
        elif k == "norm":
            v = NORM[v]
        elif k == "score":
            v = SCORE[v]
        dt = torch.float32 if isinstance(v, float) else torch.int32
        out.append((f"cfg.{k}", torch.tensor([v], dtype=dt)))
    return out


def run_steps(name, cfg, P32, tokens):
    """The 10 AdamW steps from P32; returns the losses. Raises NearTie."""
    P = {k: v.double().clone() for k, v in P32.items()}
    state, losses = {}, []
    for t in range(1, TRAIN["steps"] + 1):
        for v in P.values():
            v.requires_grad_(True)
            v.grad = None
        o = forward(cfg, P, tokens)
        o["loss"].backward()
        for s in o["stats"]:
            if s["gap"] <= MIN_GAP_TRAIN:
                raise NearTie(f"{name}: near tie at step {t} (gap {s['gap']:.2e})")
        losses.append(o["loss"].item())
        grads = {k: (v.grad if v.grad is not None else torch.zeros_like(v)) for k, v in P.items()}
        for v in P.values():
            v.requires_grad_(False)
        adamw_step(P, grads, state, t, TRAIN["lr"], TRAIN["beta1"], TRAIN["beta2"], TRAIN["eps"], TRAIN["wd"])
        if cfg.score_bias:
            score_bias_update(cfg, P, o["stats"], TRAIN["gamma"])
    return losses


PROJ_SEED = 777  # seed of the random projection r of gradients (gradstat)


def make_preset_case(name, cfg, B, T, seed):
    """The shipped preset's shape (too big to store every tensor): parameters from the portable hashed init
    (the C test regenerates them; paramstat lets it check), gradients as [||g||_2, <g, r>] per tensor with r a
    hashed vector in [-1, 1), full logits and losses, router top-k, 10 AdamW step losses."""
    cfg.T = T
    P32 = init_params_hashed(cfg, seed)
    g = torch.Generator().manual_seed(seed + 1)
    tokens = torch.randint(0, cfg.V, (B, T + 1 + cfg.mtp), generator=g)
    P = {k: v.double().requires_grad_(True) for k, v in P32.items()}
    out = forward(cfg, P, tokens)
    out["loss"].backward()
    for s in out["stats"]:
        if s["gap"] <= MIN_GAP:
            raise NearTie(f"{name}: near tie in top-k selection (gap {s['gap']:.2e})")
    tensors = cfg_tensors(cfg) + [("tokens", tokens), ("init.seed", torch.tensor([seed], dtype=torch.int32))]
    for k, (pname, shape) in enumerate(layout(cfg)):
        p = P32[pname].double()
        tensors.append((f"paramstat.{pname}", torch.tensor([p.sum().item(), (p * p).sum().item()], dtype=torch.float64)))
        gr = P[pname].grad if P[pname].grad is not None else torch.zeros_like(P[pname])
        r = torch.from_numpy(2.0 * hash_uniform(PROJ_SEED + 1000003 * (k + 1), gr.numel()) - 1.0)
        tensors.append((f"gradstat.{pname}",
                        torch.tensor([gr.norm().item(), (gr.flatten() * r).sum().item()], dtype=torch.float64)))
    tensors.append(("logits", out["logits"]))
    for k in ("loss", "lm", "mtp", "aux", "z"):
        tensors.append((f"loss.{'total' if k == 'loss' else k}", out[k].reshape(1)))
    for i, s in enumerate(out["stats"]):
        tensors += [(f"router.{i}.idx", s["idx"]), (f"router.{i}.w", s["w"])]
    losses = run_steps(name, cfg, P32, tokens)
    for k, v in TRAIN.items():
        tensors.append((f"train.{k}", torch.tensor([v], dtype=torch.int32 if k == "steps" else torch.float32)))
    tensors.append(("train.loss", torch.tensor(losses, dtype=torch.float64)))
    print(f"{name}: loss {out['loss'].item():.6f} (lm {out['lm'].item():.6f} mtp {out['mtp'].item():.6f} "
          f"aux {out['aux'].item():.6f} z {out['z'].item():.6f}), {sum(v.numel() for v in P32.values())} params, "
          f"10-step loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return tensors


def make_case(name, cfg, B, seed, bias_fn=None):
    torch.manual_seed(seed)
    P32 = init_params(cfg, seed)
    if bias_fn:
        bias_fn(cfg, P32)
    g = torch.Generator().manual_seed(seed + 1)
    tokens = torch.randint(0, cfg.V, (B, cfg.T + 1 + cfg.mtp), generator=g)
    P = {k: v.double().requires_grad_(True) for k, v in P32.items()}
    out = forward(cfg, P, tokens)
    out["loss"].backward()
    for s in out["stats"]:
        if s["gap"] <= MIN_GAP:
            raise NearTie(f"{name}: near tie in top-k selection (gap {s['gap']:.2e})")
    tensors = cfg_tensors(cfg) + [("tokens", tokens)]
    tensors += [(f"param.{k}", v) for k, v in P32.items()]
    tensors += [(f"grad.{k}", P[k].grad if P[k].grad is not None else torch.zeros_like(P[k])) for k in P]
    tensors.append(("logits", out["logits"]))
    for k in ("loss", "lm", "mtp", "aux", "z"):
        tensors.append((f"loss.{'total' if k == 'loss' else k}", out[k].reshape(1)))
    for i, s in enumerate(out["stats"]):
        tensors += [(f"router.{i}.idx", s["idx"]), (f"router.{i}.w", s["w"])]
    losses = run_steps(name, cfg, P32, tokens)  # 10 AdamW steps from the same start
    for k, v in TRAIN.items():
        tensors.append((f"train.{k}", torch.tensor([v], dtype=torch.int32 if k == "steps" else torch.float32)))
    tensors.append(("train.loss", torch.tensor(losses, dtype=torch.float64)))
    min_gap = min(s["gap"] for s in out["stats"]) if out["stats"] else float("inf")
    print(f"{name}: loss {out['loss'].item():.6f} (lm {out['lm'].item():.6f} mtp {out['mtp'].item():.6f} "
          f"aux {out['aux'].item():.6f} z {out['z'].item():.6f}), {sum(v.numel() for v in P32.values())} params, "
          f"min top-k gap {min_gap:.2e}, 10-step loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return tensors


def sandwich_bias(cfg, P):
    """Non-zero score-correction biases so selection really uses them; expert 3 of the first MoE layer gets
    -1 so that (sigmoid scores being in (0, 1)) it never receives a token: the zero-token path."""
    g = torch.Generator().manual_seed(7)
    first = True
    for k in P:
        if k.endswith("e_score_correction_bias"):
            P[k] = (torch.rand(P[k].shape, generator=g) - 0.5) * 0.04
            if first:
                P[k][3] = -1.0
                first = False


PRESET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "configs", "models", "tiny-moe.json")


def preset_cfg(**changes):
    cfg = cfg_from_json(PRESET)
    for k, v in changes.items():
        setattr(cfg, k, v)
    return cfg


# the shipped tiny-moe preset's shape (sandwich norm + MLA as shipped; pre-norm; GQA), B 2, T 32
PRESET_CASES = [
    ("preset_sandwich", lambda: preset_cfg(), 2, 32, 21),
    ("preset_pre", lambda: preset_cfg(norm="pre"), 2, 32, 22),
    ("preset_gqa", lambda: preset_cfg(attn="gqa", H_kv=2, head_dim=32), 2, 32, 23),
]

CASES = [
    ("mla_pre", Cfg(attn="mla", norm="pre", score="softmax", norm_topk=1, routed_scale=1.0, aux_alpha=0.01,
                    z_loss=1e-3, mtp=1, mtp_weight=0.3), 2, 11, None),
    ("mla_sandwich", Cfg(attn="mla", q_lora=0, norm="sandwich", score="sigmoid", norm_topk=1, routed_scale=2.5,
                         score_bias=1, aux_alpha=0.01, z_loss=0.0, mtp=1, mtp_weight=0.3), 2, 12, sandwich_bias),
    ("gqa", Cfg(attn="gqa", H=4, H_kv=2, head_dim=8, qkv_bias=1, norm="pre", score="softmax", norm_topk=0,
                routed_scale=1.0, E_shared=0, aux_alpha=0.01, z_loss=1e-3, mtp=2, mtp_weight=0.5), 2, 13, None),
]


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "tests",
                                                                  "fixtures")
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    for name, cfg, B, seed, bias_fn in CASES:
        path = os.path.join(out_dir, f"model_{name}.umfx")
        for attempt in range(50):  # the first seed from `seed` upwards whose routing has no near ties
            try:
                tensors = make_case(name, cfg, B, seed + 1000 * attempt, bias_fn)
                break
            except NearTie as e:
                print(f"  {e}; next seed")
        else:
            raise SystemExit(f"{name}: no seed without near ties")
        write_umfx(path, tensors)
        print(f"  wrote {path} ({os.path.getsize(path)} bytes)")
    for name, mk, B, T, seed in PRESET_CASES:
        path = os.path.join(out_dir, f"model_{name}.umfx")
        for attempt in range(50):
            try:
                tensors = make_preset_case(name, mk(), B, T, seed + 1000 * attempt)
                break
            except NearTie as e:
                print(f"  {e}; next seed")
        else:
            raise SystemExit(f"{name}: no seed without near ties")
        write_umfx(path, tensors)
        print(f"  wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
