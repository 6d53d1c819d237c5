"""benchmarks/scaling.py's verdicts and table: the targets, the CI gates,
when the cores count as idle, and the side-by-side table."""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional, Tuple

#: the issue's targets: 2 threads on own domains >= 1.8x one thread (plain
#: and with an API name); one shared domain under 2 threads >= 0.5x one thread
TARGETS = {"own": 1.8, "api": 1.8, "shared": 0.5}
#: what --gate enforces (free-threaded, GIL off, idle cores only), as
#: benchmarks/check_ratios.py does: a met target with 25 % margin, a missed
#: one at today's worst measured ratio / 1.25 so that it cannot get worse
#: unnoticed.  (value, why)  "shared" has no gate yet: one shared domain
#: hands the job over with a wake-up and a context switch per pair, far below
#: its target (0.09x on idle cores), and the hand-off that could reach it is
#: a change to the C core still to come.
GATES = {
    "own": (1.1, "target 1.8 missed (1.39x on idle cores, 2026-12-05); gate = today / 1.25"),
    "api": (1.0, "target 1.8 missed (1.26x on idle cores, 2026-12-05); gate = today / 1.25"),
}
#: the cores count as idle when the C loop scaled this well in the same rounds
#: and other processes used less than this many cores meanwhile
IDLE_C_RATIO = 1.8
IDLE_OTHERS = 0.25
#: the least overlap of two threads (share of their CPU time) a round needs
#: for the side-by-side estimate (see child)
MIN_OVERLAP = 0.25


def _fmt_k(x: Optional[float]) -> str:
    return "-" if x is None else f"{x / 1000:.0f}k"


def verdicts(res: Dict[str, Any]) -> Dict[str, Any]:
    """Per case: the ratio against its target, judged only when its rounds
    ran on idle cores and the C loop scaled in the same run."""
    c = res.get("c")
    common = []
    if c is None:
        common.append("no C calibration")
    elif c["ratios"]["own"] < IDLE_C_RATIO:
        common.append(f"the C loop scaled only {c['ratios']['own']:.2f}x")
    out: Dict[str, Any] = {"cases": {}}
    for case, ratio in res["ratios"].items():
        why = list(common)
        idle, want = res["idle_rounds"][case], min(3, res["rounds_wanted"])
        if idle < want:
            why.append(f"{idle} of {res['rounds'][case]} rounds on idle cores "
                       f"(other processes used {res['others_cores'][case]:.2f} cores)")
        target = TARGETS.get(case)
        gate, gate_why = GATES.get(case, (None, ""))
        out["cases"][case] = {"ratio": round(ratio, 3), "target": target,
                              "met": None if target is None else ratio >= target,
                              "gate": gate, "gate_ok": None if gate is None else ratio >= gate,
                              "gate_why": gate_why,
                              "judged": not why, "not_idle_because": why}
    out["idle"] = all(x["judged"] for x in out["cases"].values())
    return out


def print_table(results: List[Tuple[str, Dict[str, Any]]], out: Any = sys.stdout) -> None:
    cases = [c for c in ("own", "api", "shared", "noop2", "with", "raw", "raw_gc", "quick_raw")
             if any(c in r["ratios"] for _, r in results)]
    head = ["case (2 threads / 1)"] + [label for label, _ in results]
    rows = []
    what = {"own": "own domains: begin+end", "api": "own domains: begin+end, api=",
            "shared": "one shared domain", "noop2": "floor: 2 no-op cffi calls",
            "with": "own domains: with dom.job()", "raw": "raw cffi, plain pointer",
            "raw_gc": "raw cffi, ffi.gc pointer", "quick_raw": "raw cffi, 1-arg begin"}
    for case in cases:
        row = [what[case]]
        for _, r in results:
            x = r["ratios"].get(case)
            one = r["pairs_per_s"].get(f"{'own' if case == 'shared' else case}/1")
            row.append("-" if x is None else f"{x:.2f}x ({_fmt_k(one)}/s)")
        rows.append(row)
    for case in cases:
        if case == "noop2":
            continue
        row = [f"  side by side, estimated: {case}"]
        for _, r in results:
            est = r.get("estimate", {}).get(case)
            row.append("-" if not est else
                       f"{est[0]:.2f}x (cpu {r['cpu_per_pair_ratio'][case]:.2f}, "
                       f"ov {r['overlap'][case]:.2f}, n={est[1]})")
        rows.append(row)
    rows.append(["C loop: own domains"] + [
        f"{r['c']['ratios']['own']:.2f}x ({_fmt_k(r['c']['pairs_per_s']['1'])}/s)"
        if "c" in r else "-" for _, r in results])
    rows.append(["C loop: one shared domain"] + [
        f"{r['c']['ratios']['shared']:.2f}x" if "c" in r else "-" for _, r in results])
    rows.append(["idle rounds (own; shared)"] + [
        f"{r['idle_rounds'].get('own', 0)}/{r['rounds'].get('own', 0)}; "
        f"{r['idle_rounds'].get('shared', 0)}/{r['rounds'].get('shared', 0)}"
        for _, r in results])
    rows.append(["other processes (cores, median)"] + [
        f"{max(r['others_cores'].values()):.2f}" for _, r in results])
    rows.append(["load average (before, after)"] + [
        f"{r['loadavg']['before'][0]:.2f}, {r['loadavg']['after'][0]:.2f}"
        for _, r in results])
    widths = [max(len(str(row[i])) for row in rows + [head]) for i in range(len(head))]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)), file=out)
    print(line, file=out)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)), file=out)
    print("(ratios: median over rounds of 2-thread / 1-thread pairs per second measured "
          "next to each other; in brackets the 1-thread median.  'side by side, "
          "estimated': what 2 threads would reach if they always ran at once, from "
          "the CPU time per pair 2 threads / 1 (cpu) and the share of it the two "
          f"threads ran together (ov, rounds with ov >= {MIN_OVERLAP}); an estimate "
          "for busy machines, never gated)", file=out)
    for label, r in results:
        v = r["verdict"]
        judged = [f"{c} {x['ratio']:.2f}x {'>=' if x['met'] else '<'} {x['target']}"
                  for c, x in v["cases"].items() if x["judged"] and x["target"]]
        unjudged = {c: x["not_idle_because"] for c, x in v["cases"].items()
                    if not x["judged"] and x["target"]}
        line = f"{label}: "
        if judged:
            line += "on idle cores: " + ", ".join(judged)
        if unjudged:
            reasons = sorted({w for ws in unjudged.values() for w in ws})
            line += ("; " if judged else "") + "NOT judged (cores not idle: " \
                + "; ".join(reasons) + f"): {', '.join(unjudged)}"
        print(line, file=out)
