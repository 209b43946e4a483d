"""model.py - the PyTorch twin of the ultramoe engine model (src/model), written independently from the
same formulas (docs/engine-model.md) so that the C engine can be checked against it.

Functional style: parameters are a dict {HF tensor name: tensor}, in the same order and with the same names
and shapes as the C tensor table (src/model/model_layout.c). Autograd gives the gradients.

Model: token embedding (untied unless cfg.tied), L layers (pre-norm or depth-scaled sandwich norm; attention
MHA/GQA or MLA with RoPE rotate-half; FFN SwiGLU dense for the first k layers, MoE after), final RMSNorm,
LM head, cross-entropy; D MTP modules (DeepSeek-V3 sec. 2.2); aux load-balancing loss (Switch / GShard,
alpha * sum_i f_i P_i), router z-loss (ST-MoE eq. 5), aux-loss-free score bias (DeepSeek-V3 sec. 2.1.2).

Does not: data loading, schedules, clipping (only the fixed-hyper-parameter AdamW used by the fixtures).
"""
import math
from dataclasses import dataclass, field, asdict

import torch
import torch.nn.functional as Fn

DSSN_C_ATTN = 0.283  # Pangu Ultra (arXiv 2504.07866) DSSN post-norm gain constants, gain = c / sqrt(L)
DSSN_C_MLP = 0.432
TINYINIT_EMBED_STD = 0.5


@dataclass
class Cfg:
    """Field names and meanings follow spec_model (include/umoe/spec.h)."""
    L: int = 3
    C: int = 32
    H: int = 4
    H_kv: int = 4
    head_dim: int = 8
    attn: str = "mla"          # mla | gqa | mha
    q_lora: int = 16
    kv_lora: int = 16
    qk_nope: int = 8
    qk_rope: int = 4
    v_head: int = 8
    F: int = 32
    first_k_dense: int = 1
    E: int = 8
    E_shared: int = 1
    K: int = 2
    F_expert: int = 8
    V: int = 64
    tied: int = 0
    mtp: int = 1
    T: int = 16
    qkv_bias: int = 0
    norm: str = "pre"          # pre | sandwich
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    score: str = "softmax"     # softmax | sigmoid
    norm_topk: int = 1
    routed_scale: float = 1.0
    score_bias: int = 0
    aux_alpha: float = 0.01
    z_loss: float = 0.0
    mtp_weight: float = 0.3
    init_std: float = 0.0

    def is_moe(self, l):
        return self.E > 0 and l >= self.first_k_dense

    def dims(self):
        if self.attn == "mla":
            return dict(Hk=self.H, Dk=self.qk_nope + self.qk_rope, Dv=self.v_head)
        hk = self.H if self.attn == "mha" else self.H_kv
        return dict(Hk=hk, Dk=self.head_dim, Dv=self.head_dim)


def cfg_from_json(path):
    """Cfg from one of our model JSON files (docs/formats.md keys; `_*`, name and aux_scope ignored)."""
    import json
    with open(path) as f:
        j = json.load(f)
    keys = dict(layers="L", hidden="C", heads="H", kv_heads="H_kv", head_dim="head_dim", attention="attn",
                q_lora_rank="q_lora", kv_lora_rank="kv_lora", qk_nope_head_dim="qk_nope",
                qk_rope_head_dim="qk_rope", v_head_dim="v_head", ffn_hidden="F", first_k_dense="first_k_dense",
                experts="E", shared_experts="E_shared", top_k="K", expert_ffn_hidden="F_expert", vocab="V",
                tied_embeddings="tied", mtp_depth="mtp", seq_len="T", qkv_bias="qkv_bias", norm="norm",
                norm_eps="norm_eps", rope_theta="rope_theta", score="score", norm_topk="norm_topk",
                routed_scale="routed_scale", score_bias="score_bias", aux_alpha="aux_alpha", z_loss="z_loss",
                mtp_weight="mtp_weight", init_std="init_std")
    cfg = Cfg(E=0, K=0, E_shared=0, first_k_dense=0, mtp=0, q_lora=0, kv_lora=0, qk_nope=0, qk_rope=0, v_head=0,
              F=0, F_expert=0, aux_alpha=0.01, z_loss=0.0, norm_topk=1)
    for k, v in j.items():
        if k.startswith("_") or k in ("name", "aux_scope"):
            continue
        if k == "ffn":
            if v != "swiglu":
                raise ValueError(f"{path}: the twin trains SwiGLU only (ffn {v!r})")
            continue
        if k not in keys:
            raise ValueError(f"{path}: unknown field {k!r}")
        f = keys[k]
        setattr(cfg, f, type(getattr(cfg, f))(v))
    if "kv_heads" not in j:
        cfg.H_kv = cfg.H
    if "head_dim" not in j:
        cfg.head_dim = cfg.C // cfg.H
    if "attention" not in j:
        cfg.attn = "mla" if "kv_lora_rank" in j else ("gqa" if cfg.H_kv != cfg.H else "mha")
    return cfg


def layout(cfg):
    """[(name, shape)] in the C block order: embedding, layers (MTP modules last), final norm, head."""
    C, d = cfg.C, cfg.dims()
    out = [("model.embed_tokens.weight", (cfg.V, C))]
    for l in range(cfg.L + cfg.mtp):
        p = f"model.layers.{l}."
        if l >= cfg.L:
            out += [(p + "enorm.weight", (C,)), (p + "hnorm.weight", (C,)), (p + "eh_proj.weight", (C, 2 * C))]
        out.append((p + "input_layernorm.weight", (C,)))
        qdim = cfg.H * d["Dk"]
        if cfg.attn == "mla":
            if cfg.q_lora > 0:
                out += [(p + "self_attn.q_a_proj.weight", (cfg.q_lora, C)),
                        (p + "self_attn.q_a_layernorm.weight", (cfg.q_lora,)),
                        (p + "self_attn.q_b_proj.weight", (qdim, cfg.q_lora))]
            else:
                out.append((p + "self_attn.q_proj.weight", (qdim, C)))
            out += [(p + "self_attn.kv_a_proj_with_mqa.weight", (cfg.kv_lora + cfg.qk_rope, C)),
                    (p + "self_attn.kv_a_layernorm.weight", (cfg.kv_lora,)),
                    (p + "self_attn.kv_b_proj.weight", (cfg.H * (cfg.qk_nope + cfg.v_head), cfg.kv_lora))]
        else:
            kdim = d["Hk"] * d["Dk"]
            out += [(p + "self_attn.q_proj.weight", (qdim, C)), (p + "self_attn.k_proj.weight", (kdim, C)),
                    (p + "self_attn.v_proj.weight", (kdim, C))]
            if cfg.qkv_bias:
                out += [(p + "self_attn.q_proj.bias", (qdim,)), (p + "self_attn.k_proj.bias", (kdim,)),
                        (p + "self_attn.v_proj.bias", (kdim,))]
        out.append((p + "self_attn.o_proj.weight", (C, cfg.H * d["Dv"])))
        if cfg.norm == "sandwich":
            out += [(p + "post_attention_layernorm.weight", (C,)), (p + "pre_feedforward_layernorm.weight", (C,))]
        else:
            out.append((p + "post_attention_layernorm.weight", (C,)))
        if not cfg.is_moe(l):
            out += [(p + "mlp.gate_proj.weight", (cfg.F, C)), (p + "mlp.up_proj.weight", (cfg.F, C)),
                    (p + "mlp.down_proj.weight", (C, cfg.F))]
        else:
            out.append((p + "mlp.gate.weight", (cfg.E, C)))
            if cfg.score_bias:
                out.append((p + "mlp.gate.e_score_correction_bias", (cfg.E,)))
            for j in range(cfg.E):
                q = f"{p}mlp.experts.{j}."
                out += [(q + "gate_proj.weight", (cfg.F_expert, C)), (q + "up_proj.weight", (cfg.F_expert, C)),
                        (q + "down_proj.weight", (C, cfg.F_expert))]
            if cfg.E_shared > 0:
                fs = cfg.E_shared * cfg.F_expert
                out += [(p + "mlp.shared_experts.gate_proj.weight", (fs, C)),
                        (p + "mlp.shared_experts.up_proj.weight", (fs, C)),
                        (p + "mlp.shared_experts.down_proj.weight", (C, fs))]
        if cfg.norm == "sandwich":
            out.append((p + "post_feedforward_layernorm.weight", (C,)))
        if l >= cfg.L:
            out.append((p + "shared_head.norm.weight", (C,)))
    out.append(("model.norm.weight", (C,)))
    if not cfg.tied:
        out.append(("lm_head.weight", (cfg.V, C)))
    return out


def init_params(cfg, seed):
    """TinyInit (Pangu Ultra): matrices N(0, 1/(2 C L)), embedding N(0, 0.5^2); DSSN post gains c/sqrt(L)."""
    g = torch.Generator().manual_seed(seed)
    sigma = cfg.init_std if cfg.init_std > 0 else math.sqrt(1.0 / (2.0 * cfg.C * cfg.L))
    sigma_e = cfg.init_std if cfg.init_std > 0 else TINYINIT_EMBED_STD
    P = {}
    for name, shape in layout(cfg):
        if len(shape) == 2:
            sd = sigma_e if name == "model.embed_tokens.weight" else sigma
            P[name] = torch.randn(shape, generator=g, dtype=torch.float32) * sd
        elif name.endswith("norm.weight"):
            gain = 1.0
            if cfg.norm == "sandwich" and name.endswith("post_attention_layernorm.weight"):
                gain = DSSN_C_ATTN / math.sqrt(cfg.L)
            if cfg.norm == "sandwich" and name.endswith("post_feedforward_layernorm.weight"):
                gain = DSSN_C_MLP / math.sqrt(cfg.L)
            P[name] = torch.full(shape, gain, dtype=torch.float32)
        else:
            P[name] = torch.zeros(shape, dtype=torch.float32)
    return P


GOLDEN = 0x9E3779B97F4A7C15


def hash_uniform(seed, n):
    """n values in [0, 1): u_i = splitmix64((seed + i + 1) * GOLDEN mod 2^64) >> 11, times 2^-53. Portable: the
    C tests compute the same numbers (tests/unit/test_model_preset.c), so parameters need not be stored."""
    import numpy as np
    i = np.arange(1, n + 1, dtype=np.uint64) + np.uint64(seed % 2**64)
    with np.errstate(over="ignore"):
        z = i * np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def init_params_hashed(cfg, seed):
    """Portable initialisation for reference tests: tensor k (table order) draws hash_uniform(seed + 1000003 (k+1)),
    v = 2u - 1 in [-1, 1): matrices v * sqrt(3) sigma (same variance as TinyInit's N(0, sigma^2)), embedding
    v * sqrt(3) 0.5, norm gains g0 (1 + 0.2 v) with g0 the TinyInit/DSSN start value, biases 0.02 v."""
    ref = init_params(cfg, 0)
    sigma = cfg.init_std if cfg.init_std > 0 else math.sqrt(1.0 / (2.0 * cfg.C * cfg.L))
    sigma_e = cfg.init_std if cfg.init_std > 0 else TINYINIT_EMBED_STD
    P = {}
    for k, (name, shape) in enumerate(layout(cfg)):
        n = 1
        for d in shape:
            n *= d
        v = 2.0 * hash_uniform(seed + 1000003 * (k + 1), n) - 1.0
        if len(shape) == 2:
            a = math.sqrt(3.0) * (sigma_e if name == "model.embed_tokens.weight" else sigma)
            x = v * a
        elif name.endswith("norm.weight"):
            g0 = float(ref[name][0])
            x = (1.0 + 0.2 * v) * g0
        else:
            x = 0.02 * v
        P[name] = torch.from_numpy(x.astype("float32")).reshape(shape)
    return P


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, off, D, theta):
    """Rotate-half RoPE on x[..., off:off+D] of x (B, T, H, Dfull); position = t."""
    T = x.shape[1]
    half = D // 2
    i = torch.arange(half, dtype=torch.float64)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * theta ** (-2.0 * i / D)  # (T, half)
    c = torch.cos(ang).to(x.dtype)[None, :, None, :]
    s = torch.sin(ang).to(x.dtype)[None, :, None, :]
    x1, x2 = x[..., off:off + half], x[..., off + half:off + D]
    rot = torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)
    return torch.cat([x[..., :off], rot, x[..., off + D:]], dim=-1)


# Speed mode for benchmarks: attention through torch's fused scaled_dot_product_attention. The fixtures are
# written with the explicit formula below (FAST = False); both compute the same function.
FAST = False


def attention(q, k, v, scale):
    """Causal; q (B,T,H,Dk), k (B,T,Hk,Dk), v (B,T,Hk,Dv); GQA head h uses kv head h // (H/Hk)."""
    B, T, H, _ = q.shape
    rep = H // k.shape[2]
    k = k.repeat_interleave(rep, dim=2)
    v = v.repeat_interleave(rep, dim=2)
    if FAST:
        o = Fn.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True,
                                            scale=scale)
        return o.transpose(1, 2)
    s = torch.einsum("bthd,bshd->bhts", q, k) * scale
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    s = s.masked_fill(~mask, float("-inf"))
    return torch.einsum("bhts,bshd->bthd", torch.softmax(s, dim=-1), v)


def attn_block(cfg, P, p, x, B, T):
    d = cfg.dims()
    H = cfg.H
    if cfg.attn == "mla":
        nope, rp, kvl = cfg.qk_nope, cfg.qk_rope, cfg.kv_lora
        if cfg.q_lora > 0:
            qa = rmsnorm(x @ P[p + "self_attn.q_a_proj.weight"].T, P[p + "self_attn.q_a_layernorm.weight"],
                         cfg.norm_eps)
            q = qa @ P[p + "self_attn.q_b_proj.weight"].T
        else:
            q = x @ P[p + "self_attn.q_proj.weight"].T
        q = rope(q.view(B, T, H, nope + rp), nope, rp, cfg.rope_theta)
        kva = x @ P[p + "self_attn.kv_a_proj_with_mqa.weight"].T
        lat = rmsnorm(kva[..., :kvl], P[p + "self_attn.kv_a_layernorm.weight"], cfg.norm_eps)
        krope = rope(kva[..., kvl:].reshape(B, T, 1, rp), 0, rp, cfg.rope_theta)
        kvb = (lat @ P[p + "self_attn.kv_b_proj.weight"].T).view(B, T, H, nope + cfg.v_head)
        k = torch.cat([kvb[..., :nope], krope.expand(B, T, H, rp)], dim=-1)
        v = kvb[..., nope:]
        o = attention(q, k, v, 1.0 / math.sqrt(nope + rp))
    else:
        Hk, hd = d["Hk"], d["Dk"]
        bq = P.get(p + "self_attn.q_proj.bias")
        bk = P.get(p + "self_attn.k_proj.bias")
        bv = P.get(p + "self_attn.v_proj.bias")
        q = Fn.linear(x, P[p + "self_attn.q_proj.weight"], bq).view(B, T, H, hd)
        k = Fn.linear(x, P[p + "self_attn.k_proj.weight"], bk).view(B, T, Hk, hd)
        v = Fn.linear(x, P[p + "self_attn.v_proj.weight"], bv).view(B, T, Hk, hd)
        q = rope(q, 0, hd, cfg.rope_theta)
        k = rope(k, 0, hd, cfg.rope_theta)
        o = attention(q, k, v, 1.0 / math.sqrt(hd))
    return o.reshape(B * T, -1) @ P[p + "self_attn.o_proj.weight"].T


def swiglu_mlp(x, wg, wu, wd):
    return (Fn.silu(x @ wg.T) * (x @ wu.T)) @ wd.T


def moe_block(cfg, P, p, x, stats):
    """x (N, C). Returns y (N, C); appends router info to stats."""
    N = x.shape[0]
    E, K = cfg.E, cfg.K
    logits = x @ P[p + "mlp.gate.weight"].T
    scores = torch.softmax(logits, -1) if cfg.score == "softmax" else torch.sigmoid(logits)
    sel = scores.detach()
    if cfg.score_bias:
        sel = sel + P[p + "mlp.gate.e_score_correction_bias"].detach()
    order = torch.sort(sel, dim=-1, descending=True, stable=True)  # ties: lower expert id first
    idx = order.indices[:, :K]
    gap = (order.values[:, K - 1] - order.values[:, K]).min().item() if K < E else float("inf")
    w = scores.gather(1, idx)
    if cfg.norm_topk:
        w = w / w.sum(-1, keepdim=True)
    w = w * cfg.routed_scale
    y = torch.zeros_like(x)
    for e in range(E):
        tok, slot = (idx == e).nonzero(as_tuple=True)
        if tok.numel() == 0:
            continue
        q = f"{p}mlp.experts.{e}."
        ye = swiglu_mlp(x[tok], P[q + "gate_proj.weight"], P[q + "up_proj.weight"], P[q + "down_proj.weight"])
        y = y.index_add(0, tok, ye * w[tok, slot][:, None])
    if cfg.E_shared > 0:
        s = p + "mlp.shared_experts."
        y = y + swiglu_mlp(x, P[s + "gate_proj.weight"], P[s + "up_proj.weight"], P[s + "down_proj.weight"])
    counts = torch.bincount(idx.flatten(), minlength=E).to(x.dtype)
    prob = scores if cfg.score == "softmax" else scores / scores.sum(-1, keepdim=True)
    f = E / (K * N) * counts
    aux = cfg.aux_alpha * (f * prob.mean(0)).sum()
    z = cfg.z_loss * torch.logsumexp(logits, -1).pow(2).mean()
    stats.append(dict(idx=idx, w=w.detach(), counts=counts, aux=aux, z=z, gap=gap))
    return y


def layer(cfg, P, l, x, B, T, stats):
    p = f"model.layers.{l}."
    eps = cfg.norm_eps
    a = attn_block(cfg, P, p, rmsnorm(x, P[p + "input_layernorm.weight"], eps), B, T)
    if cfg.norm == "sandwich":
        a = rmsnorm(a, P[p + "post_attention_layernorm.weight"], eps)
        pre = P[p + "pre_feedforward_layernorm.weight"]
    else:
        pre = P[p + "post_attention_layernorm.weight"]
    h = x + a
    n = rmsnorm(h, pre, eps)
    if cfg.is_moe(l):
        f = moe_block(cfg, P, p, n, stats)
    else:
        f = swiglu_mlp(n, P[p + "mlp.gate_proj.weight"], P[p + "mlp.up_proj.weight"], P[p + "mlp.down_proj.weight"])
    if cfg.norm == "sandwich":
        f = rmsnorm(f, P[p + "post_feedforward_layernorm.weight"], eps)
    return h + f


def forward(cfg, P, tokens):
    """tokens (B, T + 1 + D) long. Returns dict of losses, logits (B*T, V) and per-MoE-layer router stats."""
    B, W = tokens.shape
    T = W - 1 - cfg.mtp
    N = B * T
    emb = P["model.embed_tokens.weight"]
    head = emb if cfg.tied else P["lm_head.weight"]
    stats = []
    x = emb[tokens[:, :T].reshape(-1)]
    for l in range(cfg.L):
        x = layer(cfg, P, l, x, B, T, stats)
    logits = rmsnorm(x, P["model.norm.weight"], cfg.norm_eps) @ head.T
    lm = Fn.cross_entropy(logits, tokens[:, 1:T + 1].reshape(-1))
    mtp = torch.zeros((), dtype=x.dtype)
    h = x
    for d in range(cfg.mtp):
        p = f"model.layers.{cfg.L + d}."
        e = rmsnorm(emb[tokens[:, d + 1:d + 1 + T].reshape(-1)], P[p + "enorm.weight"], cfg.norm_eps)
        hn = rmsnorm(h, P[p + "hnorm.weight"], cfg.norm_eps)
        h = layer(cfg, P, cfg.L + d, torch.cat([e, hn], -1) @ P[p + "eh_proj.weight"].T, B, T, stats)
        lg = rmsnorm(h, P[p + "shared_head.norm.weight"], cfg.norm_eps) @ head.T
        mtp = mtp + Fn.cross_entropy(lg, tokens[:, d + 2:d + 2 + T].reshape(-1))
    if cfg.mtp > 0:
        mtp = mtp / cfg.mtp
    aux = sum((s["aux"] for s in stats), torch.zeros((), dtype=x.dtype))
    z = sum((s["z"] for s in stats), torch.zeros((), dtype=x.dtype))
    total = lm + (cfg.mtp_weight * mtp if cfg.mtp > 0 else 0) + aux + z
    return dict(loss=total, lm=lm, mtp=mtp, aux=aux, z=z, logits=logits, stats=stats, N=N)


def is_decay(name, shape):
    return len(shape) >= 2


def adamw_step(P, grads, state, t, lr, b1, b2, eps, wd):
    """AdamW as nn/adamw.c: p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p), wd only on matrices."""
    with torch.no_grad():
        for name, p in P.items():
            g = grads[name]
            m, v = state.setdefault(name, (torch.zeros_like(p), torch.zeros_like(p)))
            m.mul_(b1).add_((1 - b1) * g)
            v.mul_(b2).add_((1 - b2) * g * g)
            mhat = m / (1 - b1 ** t)
            vhat = v / (1 - b2 ** t)
            w = wd if is_decay(name, p.shape) else 0.0
            p.sub_(lr * (mhat / (vhat.sqrt() + eps) + w * p))


def score_bias_update(cfg, P, stats, gamma):
    """DeepSeek-V3 aux-loss-free balancing: b_i += gamma * sign(mean load - load_i)."""
    moe_layers = [l for l in range(cfg.L + cfg.mtp) if cfg.is_moe(l)]
    with torch.no_grad():
        for l, s in zip(moe_layers, stats):
            b = P[f"model.layers.{l}.mlp.gate.e_score_correction_bias"]
            load = s["counts"]
            b.add_(gamma * torch.sign(load.mean() - load))
