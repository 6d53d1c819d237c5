"""``python -m pymigjob bench``'s report and --help: a missed
target says why beside it, and --help states every option's default.  No
benchmark is run here."""

from __future__ import annotations

import io
import math
import re

import pytest

from pymigjob.cli import bench


def _report(values):
    out = io.StringIO()
    bench.print_checks([bench.TARGETS[k].check(v) for k, v in values.items()], out)
    return out.getvalue()


def _row(text, what):
    (line,) = [line for line in text.splitlines() if line.startswith(what)]
    return line


def test_a_missed_target_says_what_was_measured_against_what():
    t = bench.TARGETS["begin_end/noop2"]   # "<=" 1.6, gate 4.25
    text = _report({"begin_end/noop2": 3.12, "pure/begin_end": 4.5,
                    "with_job/noop2": 10.0, "fair64/throughput": 0.5,
                    "fair64/max_wait": None, "memory/pure": math.nan})
    row = _row(text, t.what)
    assert "MISSED: 3.120 > 1.6" in row and row.rstrip().endswith("ok")
    # ">=" targets: below the bound
    assert "MISSED: 0.500 < 0.9" in _row(text, bench.TARGETS["fair64/throughput"].what)
    assert "FAIL: 0.500 < 0.72" in _row(text, bench.TARGETS["fair64/throughput"].what)
    # a met target, and n/a for no value, need no reason
    met = _row(text, bench.TARGETS["pure/begin_end"].what)
    assert re.search(r"\smet\s", met) and "MISSED" not in met
    assert "MISSED" not in _row(text, bench.TARGETS["fair64/max_wait"].what)
    assert "MISSED" not in _row(text, bench.TARGETS["memory/pure"].what)
    # below the table: each miss, with the gate and why the gate is what it is
    notes = [line.strip() for line in text.splitlines() if line.startswith("  ")]
    (note,) = [n for n in notes if n.startswith(t.what)]
    assert "measured 3.120, target <= 1.6 missed" in note
    assert "CI gate (<= 4.25) holds" in note and t.why_gate in note
    (note,) = [n for n in notes if n.startswith(bench.TARGETS["with_job/noop2"].what)]
    assert "FAILS too" in note
    assert len(notes) == 3


def test_checks_carry_the_gate_s_reason():
    for t in bench.TARGETS.values():
        assert t.check(1.0)["why_gate"] == t.why_gate


def test_help_states_every_option_s_default(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    options = text.split("options:", 1)[1]
    # one entry per option: from a line starting with "  -" to the next
    entries = re.split(r"\n(?=  -)", options.strip("\n"))
    names = []
    for entry in entries:
        flat = " ".join(entry.split())
        name = flat.split()[0].rstrip(",")
        names.append(name)
        if name in ("-h", "--help"):
            continue
        assert "(default: " in flat, f"{name}: no default in {flat!r}"
    assert {"--full", "--only", "--rounds", "--round-time", "--duration",
            "--contention-rounds", "--threads", "--hold-ms", "--mix-duration", "--domains",
            "--json"} <= set(names)
    # the stated defaults are the real ones
    flat = " ".join(text.split())
    assert f"(default: {bench.QUICK.micro_rounds}; with --full: {bench.FULL.micro_rounds})" \
        in flat
    assert f"(default: {bench.QUICK.scale_n})" in flat
    assert "(default: 1,8,64,256)" in flat
