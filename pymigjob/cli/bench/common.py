"""What every benchmark section uses: the implementations (the C-backed
package, the pure twin) and the floor (a no-op C call), statistics, and the
issue's targets with the CI gates derived from them."""

from __future__ import annotations

import importlib
import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pymigjob

# ---------------------------------------------------------------------------
# implementations and the floor


def load_c() -> Any:
    """The C-backed package (pymigjob itself)."""
    if pymigjob.backend != "c":
        raise RuntimeError("PYMIGJOB_IMPL=pure makes `import pymigjob` the pure twin; "
                           "the benchmarks compare the C core with it: unset PYMIGJOB_IMPL")
    return pymigjob


_PURE_STATE: Dict[str, Any] = {}


def load_pure() -> Tuple[Optional[Any], str]:
    """(pymigjob.pure, "") or (None, why it is not available)."""
    if "mod" not in _PURE_STATE:
        try:
            mod = importlib.import_module("pymigjob.pure")
            missing = [n for n in ("Driver", "Job", "AsyncJob", "Phase", "job_mask",
                                   "phase_to_string", "phase_from_string")
                       if not hasattr(mod, n)]
            if missing:
                _PURE_STATE["mod"] = None
                _PURE_STATE["why"] = ("pymigjob.pure is incomplete (no "
                                      f"{', '.join(missing)}): comparisons against it "
                                      "are skipped")
            else:
                _PURE_STATE["mod"] = mod
                _PURE_STATE["why"] = ""
        except ModuleNotFoundError as e:
            _PURE_STATE["mod"] = None
            if e.name == "pymigjob.pure":
                _PURE_STATE["why"] = ("pymigjob.pure (the pure-Python twin) is not there "
                                      "yet: comparisons against it are skipped")
            else:
                _PURE_STATE["why"] = f"pymigjob.pure failed to import: {e!r}"
        except Exception as e:  # a twin under construction must not kill the benchmarks
            _PURE_STATE["mod"] = None
            _PURE_STATE["why"] = f"pymigjob.pure failed to import: {e!r}"
    return _PURE_STATE["mod"], _PURE_STATE["why"]


def impl_by_name(name: str) -> Any:
    if name == "pymigjob":
        return load_c()
    mod, why = load_pure()
    if mod is None:
        raise RuntimeError(why)
    return mod


def noop() -> Callable[[], None]:
    """The floor's C function (csrc/testing.h's mj_noop), from the C backend's
    binding: imported here, when a benchmark asks, because the C core may
    be missing (PYMIGJOB_IMPL=pure) where the rest of the bench still runs."""
    from pymigjob._c.binding import noop as c_noop

    return c_noop


def min_round_time() -> float:
    """The shortest round that gives stable numbers: 20 GIL switch intervals."""
    return 20 * sys.getswitchinterval()


def loadavg() -> List[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        return []


def json_safe(x: Any) -> Any:
    """NaN and infinities (not JSON) become None, recursively."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


def median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if not n:
        return math.nan
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def percentile(sorted_xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_xs:
        return math.nan
    k = max(0, min(len(sorted_xs) - 1, math.ceil(q / 100 * len(sorted_xs)) - 1))
    return sorted_xs[k]


# ---------------------------------------------------------------------------
# targets and the CI gates derived from them


@dataclass(frozen=True)
class Target:
    key: str
    what: str
    op: str          # "<=" or ">="
    target: float    # the target
    gate: float      # what CI enforces: the target, or today's value, with >= 25 % margin
    why_gate: str = ""

    def met(self, value: float) -> bool:
        return value <= self.target if self.op == "<=" else value >= self.target

    def passes_gate(self, value: float) -> bool:
        return value <= self.gate if self.op == "<=" else value >= self.gate

    def check(self, value: Optional[float]) -> Dict[str, Any]:
        ok = value is not None and not math.isnan(value)
        return {"key": self.key, "what": self.what, "op": self.op, "value": value,
                "target": self.target, "gate": self.gate, "why_gate": self.why_gate,
                "met": bool(ok and self.met(value)),  # type: ignore[arg-type]
                "gate_ok": bool(ok and self.passes_gate(value))}  # type: ignore[arg-type]


TARGETS: Dict[str, Target] = {t.key: t for t in [
    Target("begin_end/noop2", "begin_job+end_job / two no-op cffi calls", "<=", 1.6,
           4.25, "target missed today (2.7-3.4x, also when busy); gate = today's worst + 25 %"),
    Target("begin_end/release_0_1", "begin_job+end_job over two no-ops: today's / 0.1's",
           "<=", 1.0, 1.15, "target + 15 % (two worker processes, each over its own floor)"),
    Target("pure/begin_end", "pure twin's begin_job+end_job / pymigjob's", ">=", 4.0,
           2.9, "met only sometimes (3.7-4.3x); gate = today's worst / 1.25"),
    Target("with_job/noop2", "with dom.job(...) / two no-op cffi calls", "<=", 2.5,
           9.5, "target missed today (5.7-7.4x); gate = today's worst + 25 %"),
    Target("fair64/max_wait", "64 threads x 0.5 ms: max wait / (64 x hold)", "<=", 1.5,
           1.875, "target x 1.25"),
    Target("fair64/throughput", "64 threads x 0.5 ms: throughput / one thread, no lock",
           ">=", 0.90, 0.72, "target / 1.25"),
    Target("memory/pure", "bytes per domain (RSS) / the pure twin's", "<=", 0.20,
           1.4, "target missed (0.1: 1.05-1.11x; 0.2, with the agent slot, job data "
                "and uuid per domain: 1.18x on 3.11, 606 vs 514 B); gate = 0.1's worst + 25 %"),
]}


