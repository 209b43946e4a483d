#!/usr/bin/env python3
"""calibrate_sim.py - reproduces the three calibrated constants of the simulator, each fitted ONLY on a
calibration set that is disjoint from data/validation/published_points.csv (docs/validation.md):

  1. host launch seconds per modelled kernel (src/sim/cost.h SIM_HOST_S_PER_KERNEL):
     vTrain single-node A100 sweep (1,440 rows), median |step-time error|;
  2. A100 GEMM plateau e_max (configs/hardware/a100-sxm-80gb.json gemm_eff):
     vTrain multi-node A100 sweep (109 rows), median |error|, with the constant of step 1;
  3. B200 GEMM plateau e_max and attn_eff (configs/hardware/b200.json):
     the 40 SimuMax B200 rows not in published_points.csv (data/validation/simumax_b200.csv,
     in_published_points == 0);
  4. the grouped-GEMM factor of MoE expert GEMMs (src/sim/cost.h SIM_GROUPED_GEMM_FACTOR): the 10 MoE
     (DeepSeek-V2/V3) rows of that same calibration set, with the B200 constants of step 3.

Usage: python3 tools/calibrate_sim.py  (after `make`; prints the grid and the minimum of each step).
It writes only temporary files; copying a result into the presets is a deliberate, reviewed edit.
The curve shape for a plateau e_max: eff(F) = e_max x / (x + 5e-6), x = F / (peak e_max) (gemm_eff_model)."""
import csv, json, os, statistics, subprocess, tempfile

UMOE = os.environ.get("UMOE", "./umoe")
TMP = tempfile.mkdtemp(prefix="umoe-cal-")


def run(args):
    r = subprocess.run([UMOE] + args, capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def hw_with(base_path, e_max, attn=None):
    d = json.load(open(base_path))
    peak = d["peak_bf16"]
    d["gemm_eff"] = [[f, e_max * (f / (peak * e_max)) / ((f / (peak * e_max)) + 5e-6)] for f, _ in d["gemm_eff"]]
    if attn is not None:
        d["attn_eff"] = attn
    path = os.path.join(TMP, "hw.json")
    json.dump(d, open(path, "w"))
    return path


def step1():
    best = None
    for us in [40, 45, 50, 55, 60, 65, 70, 80]:
        r = run(["validate", "--vtrain", "--json", "--host-s-per-kernel", "%ge-6" % us])
        e = r["single_node"]["median_abs_error"]
        print("host %3d us/kernel: single-node median |error| %.4f" % (us, e))
        if best is None or e < best[1]:
            best = (us, e)
    print("-> host %d us per kernel\n" % best[0])
    return best[0]


def step2(host_us):
    best = None
    for e_max in [0.60, 0.65, 0.70, 0.72, 0.75, 0.78, 0.80, 0.87]:
        hw = hw_with("configs/hardware/a100-sxm-80gb.json", e_max)
        r = run(["validate", "--vtrain", "--json", "--hardware", hw, "--host-s-per-kernel", "%ge-6" % host_us])
        errs = [m["median_abs_error"] for m in r["models"]]
        # median over all multi-node rows = recompute from the per-model medians weighted by rows is not exact;
        # use the mean of per-model medians as the objective (every model counts the same)
        e = statistics.mean(errs)
        print("A100 e_max %.2f: mean of per-model median |error| %.4f" % (e_max, e))
        if best is None or e < best[1]:
            best = (e_max, e)
    print("-> A100 e_max %.2f\n" % best[0])


def b200_rows(hw, moe_only=False):
    rows = list(csv.DictReader(open("data/validation/simumax_b200.csv")))
    path = os.path.join(TMP, "b200.csv")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        for r in rows:
            if r["in_published_points"] == "1" or (moe_only and "deepseek" not in r["id"]):
                continue
            r = dict(r, hardware=hw)
            if r["model_preset"].endswith(".json"):  # relative to data/validation/
                r["model_preset"] = os.path.abspath(os.path.join("data/validation", r["model_preset"]))
            w.writerow(r)
    return path


def step3():
    best = None
    for e_max in [0.38, 0.40, 0.41, 0.42, 0.43, 0.44, 0.48]:
        for attn in [0.35, 0.45, 0.55]:
            hw = hw_with("configs/hardware/b200.json", e_max, attn)
            out = run(["validate", b200_rows(hw), "--json"])
            e = out["summary"]["median_abs_error"]
            print("B200 e_max %.2f attn_eff %.2f: median |error| %.4f over %d rows" % (e_max, attn, e, out["summary"]["modelled"]))
            if best is None or e < best[2]:
                best = (e_max, attn, e)
    print("-> B200 e_max %.2f attn_eff %.2f\n" % best[:2])
    return best[:2]


def step4(e_max, attn):
    hw = hw_with("configs/hardware/b200.json", e_max, attn)
    path = b200_rows(hw, moe_only=True)
    best = None
    for gf in [1.0, 0.8, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45]:
        os.environ["UMOE_CAL_GROUPED_GEMM"] = str(gf)
        out = run(["validate", path, "--json"])
        e = out["summary"]["median_abs_error"]
        print("grouped GEMM factor %.2f: median |error| %.4f over %d MoE rows" % (gf, e, out["summary"]["modelled"]))
        if best is None or e < best[1]:
            best = (gf, e)
    os.environ.pop("UMOE_CAL_GROUPED_GEMM", None)
    print("-> grouped GEMM factor %.2f" % best[0])


if __name__ == "__main__":
    step2(step1())
    step4(*step3())
