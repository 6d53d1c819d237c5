"""The person's tables: each section's results, and the targets and gates."""

from __future__ import annotations

import math
import sys
from typing import Any, Dict, List

def _fmt(x: Any, spec: str = ".1f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return format(x, spec)


def _table(rows: List[List[str]], head: List[str]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                     for i, (h, w) in enumerate(zip(head, widths)))
    out = [line, "-" * len(line)]
    for r in rows:
        out.append("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


def print_micro(results: List[Dict[str, Any]], out: Any = sys.stdout) -> None:
    rows = []
    for r in results:
        ns, ra = r["ns_per_op"], r["ratios"]
        rows.append([r["what"], _fmt(ns["pymigjob"]), _fmt(ns.get("pure")),
                     _fmt(ns["noop2"]), _fmt(ns["lock"]),
                     _fmt(ra["pymigjob/noop2"], ".2f") + "x",
                     _fmt(ra["pymigjob/lock"], ".2f") + "x",
                     (_fmt(ra["pure/pymigjob"], ".1f") + "x") if "pure/pymigjob" in ra else "-"])
    print(_table(rows, ["uncontended (median ns/op, CPU)", "pymigjob", "pure", "2 noops",
                        "Lock", "/2noops", "/Lock", "pure/mj"]), file=out)


def print_contention(results: List[Dict[str, Any]], out: Any = sys.stdout) -> None:
    rows = []
    for r in results:
        for name, v in r["variants"].items():
            if name == "nolock-1" and r is not results[0]:
                continue
            label = f"{r['threads']:>3} thr  {name}" if name != "nolock-1" else \
                "  1 thr  no lock (baseline)"
            rows.append([label, _fmt(v["throughput"], ".0f"),
                         _fmt(v["throughput_vs_nolock"], ".2f"),
                         _fmt(v["wait_p50_ms"], ".2f"), _fmt(v["wait_p99_ms"], ".2f"),
                         _fmt(v["wait_max_ms"], ".2f"),
                         _fmt(v["max_wait_vs_n_holds"], ".2f") if name != "nolock-1" else "-",
                         f"{v['per_thread_min']}/{v['per_thread_max']}"])
    hold = results[0]["hold_ms"] if results else 0
    print(_table(rows, [f"contention, hold {hold} ms", "ops/s", "/nolock", "p50 ms",
                        "p99 ms", "max ms", "max/(n*hold)", "min/max done"]), file=out)


def print_mix(res: Dict[str, Any], out: Any = sys.stdout) -> None:
    rows = []
    for name, r in res["runs"].items():
        c = r["counts"]
        rows.append([name, _fmt(r["granted_per_s"], ".0f"),
                     _fmt(r["allowed_while_migrating_per_s"], ".0f"),
                     _fmt(r["migrations_per_s"], ".1f"),
                     str(c.get("migrations.aborted", 0)),
                     str(c.get("modify.timeout", 0)),
                     str(r["violations"]) if name != "nolock" else "-",
                     str(len(r["leaks"]))])
    any_r = next(iter(res["runs"].values()))
    print(_table(rows, [f"daemon mix: {any_r['domains']} domains, {any_r['workers']} workers, "
                        f"{any_r.get('rounds', 1)} x {any_r['duration_s']:g} s",
                        "jobs/s", "allowed in mig/s", "migr/s", "aborted", "modify t/o",
                        "violations", "leaks"]), file=out)


def print_scale(res: Dict[str, Any], out: Any = sys.stdout) -> None:
    rows = []
    for name, p in res["impls"].items():
        rows.append([name, _fmt(p["rss_bytes_per_domain"], ".0f"),
                     _fmt(p["py_bytes_per_domain"], ".0f"),
                     _fmt(p["native_bytes_per_domain"], ".0f"),
                     _fmt(p["create_us_per_domain"], ".2f"),
                     _fmt(p["access_ops_per_s"], ".0f"), _fmt(p["access10_ops_per_s"], ".0f"),
                     _fmt(p["access_vs_10"], ".2f")])
    print(_table(rows, [f"scale: {res['n']} domains", "B/dom RSS", "B/dom py",
                        "B/dom native", "create us", "rand ops/s", "10-dom ops/s",
                        "ratio"]), file=out)


_OPPOSITE = {"<=": ">", ">=": "<"}


def _verdict(c: Dict[str, Any], ok: bool, bound: str, word: str) -> str:
    """"met"/"ok", "n/a", or the miss with its reason: the measured value
    against the bound it did not keep ("MISSED: 3.120 > 1.6")."""
    value = c["value"]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if ok:
        return "met" if word == "MISSED" else "ok"
    return f"{word}: {value:.3f} {_OPPOSITE.get(c['op'], 'vs')} {c[bound]}"


def print_checks(checks: List[Dict[str, Any]], out: Any = sys.stdout) -> None:
    """The targets and CI gates as a table; a missed target or a failed gate
    says why beside it (measured vs the bound), and below the table what the
    gate is and why it differs from the target."""
    rows = []
    for c in checks:
        rows.append([c["what"], _fmt(c["value"], ".3f"), f"{c['op']} {c['target']}",
                     _verdict(c, c["met"], "target", "MISSED"),
                     f"{c['op']} {c['gate']}",
                     _verdict(c, c["gate_ok"], "gate", "FAIL")])
    print(_table(rows, ["target", "achieved", "target", "", "CI gate", ""]), file=out)
    missed = [c for c in checks if not c["met"] and _verdict(c, False, "target", "") != "n/a"]
    for c in missed:
        gate = (f"the CI gate ({c['op']} {c['gate']}) holds" if c["gate_ok"]
                else f"the CI gate ({c['op']} {c['gate']}) FAILS too")
        why = c.get("why_gate") or ""
        print(f"  {c['what']}: measured {c['value']:.3f}, target {c['op']} {c['target']} "
              f"missed; {gate}" + (f" ({why})" if why else ""), file=out)


