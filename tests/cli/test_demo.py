"""The ``python -m pymigjob demo`` main job: it runs, it is honest, it checks itself."""

from __future__ import annotations

import io
import os
import random
import re
import subprocess
import sys
import time

import pytest

from pymigjob.cli import demo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SMALL = ["--domains", "4", "--threads", "3", "--timeout", "0.05"]


def run(argv):
    out = io.StringIO()
    result = demo.run_demo(argv, out=out)
    return result, out.getvalue()


def test_small_run_in_process_passes_every_invariant():
    result, out = run(SMALL + ["--seed", "11"])
    assert result.exit_code == 0, out
    assert result.ok and result.failures == []
    assert result.checks > 100
    # every migration ended one way or the other
    assert sorted(result.outcomes) == ["vm1", "vm2", "vm3", "vm4"]
    assert set(result.outcomes.values()) <= {"completed", "aborted", "destroyed"}
    assert result.completed + result.aborted + result.destroyed == 4
    # with 4 domains the plan has one abort and one destroy
    assert result.aborted + result.destroyed >= 1
    # refs: every source domain and every kept destination domain back to 1,
    # every cancelled incoming domain removed and freed
    for name, outcome in result.outcomes.items():
        assert result.final_refs[f"src:{name}"] == 1
        want = 1 if outcome == "completed" else 0
        assert result.final_refs[f"dst:{name}"] == want, (name, outcome)
    assert result.queries > 0
    # the summary says so
    assert "summary (" in out
    assert re.search(r"migrations\s+4 started: \d+ completed, \d+ aborted", out)
    assert re.search(r"invariants\s+all \d+ checks passed", out)
    assert "final refs" in out
    assert out.rstrip().endswith("result: OK (exit 0)")


def test_main_returns_zero_and_quiet_prints_only_the_summary(capsys):
    rc = demo.main(SMALL + ["--seed", "5", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "timeline" not in out
    assert "plan:" not in out
    assert out.lstrip().startswith("summary (")
    for label in ("migrations", "queries", "modifies", "timeouts", "aborts",
                  "destroys", "final refs", "invariants"):
        assert re.search(rf"^  {label}\s", out, re.M), label


def test_timeline_shows_phases_in_order_on_different_threads():
    result, out = run(SMALL + ["--seed", "3", "--show", "1"])
    assert result.ok, out
    assert "timeline of vm1 " in out
    rows = [line for line in out.splitlines()
            if re.match(r"\s+\d+\.\d{3}\s+mig-\d+\s+vm1\s", line)]
    wheres = [line.split()[3] for line in rows]
    firsts = []
    for where in wheres:
        if where not in firsts:
            firsts.append(where)
    if result.outcomes["vm1"] == "completed":
        expected = ["src/begin3", "dst/prepare", "src/perform3", "src/perform3_done",
                    "dst/finish3", "src/confirm3"]
    else:
        expected = ["src/begin3", "dst/prepare", "src/perform3", "dst/finish3",
                    "src/confirm3_cancelled"]
    assert firsts == expected, out
    # timestamps never go backwards
    times = [float(line.split()[0]) for line in out.splitlines()
             if re.match(r"\s+\d+\.\d{3}\s", line)]
    assert times == sorted(times)


def test_verbose_shows_every_domain():
    result, out = run(["--domains", "3", "--threads", "2", "--seed", "2", "-v"])
    assert result.ok, out
    assert "timeline of vm1, vm2, vm3 " in out
    for name in ("vm1", "vm2", "vm3"):
        assert re.search(rf"mig-\d+\s+{name}\s+src/begin3", out)


def test_one_worker_still_works():
    result, out = run(["--domains", "2", "--threads", "1", "--seed", "9", "-q"])
    assert result.ok, out
    assert "one worker" in out


def test_the_plan_follows_the_seed():
    names = [f"vm{i}" for i in range(1, 9)]
    a = demo.make_plan(names, random.Random("42/plan"))
    b = demo.make_plan(names, random.Random("42/plan"))
    assert a == b
    kinds = sorted((f.kind, f.trigger == "perform3_done") for f in a.values())
    assert kinds.count(("abort", False)) == 2
    assert kinds.count(("abort", True)) == 1          # one abort comes too late
    assert kinds.count(("destroy", False)) == 1
    assert kinds.count(("postcopy", False)) == 1      # post-copy fails, then resumes
    assert kinds.count(("complete", False)) == 3
    # the printed plan is the same for the same seed
    _, out1 = run(SMALL + ["--seed", "77"])
    _, out2 = run(SMALL + ["--seed", "77"])
    plan1 = [line for line in out1.splitlines() if line.startswith("plan:")]
    plan2 = [line for line in out2.splitlines() if line.startswith("plan:")]
    assert plan1 == plan2 and len(plan1) == 1


def test_a_postcopy_failure_is_resumed_and_completes():
    """The post-copy fate: both sides park as post-copy failed, the resume
    phases run in protocol order, the migration completes."""
    result, out = run(SMALL + ["--seed", "5", "--show", "8"])
    assert result.exit_code == 0, out
    assert "post-copy failed: the job stays, parked, async_paused" in out
    assert "already in progress" in out                 # a second begin_resume is refused
    order = [p for p in ("src/begin_resume", "dst/prepare_resume", "src/perform_resume",
                         "dst/finish_resume", "src/confirm_resume") if p in out]
    assert len(order) == 5 and sorted(order, key=out.index) == order
    assert "completed after a post-copy resume: job stats COMPLETED" in out


def test_a_leaked_reference_fails_the_run(monkeypatch):
    """The final checks are real: leak one ref and the demo exits 1."""
    original = demo.Migration.begin3

    def leaky_begin3(self):
        nxt = original(self)
        if self.name == "vm2":
            self.src.ref()
        return nxt

    monkeypatch.setattr(demo.Migration, "begin3", leaky_begin3)
    result, out = run(SMALL + ["--seed", "1", "-q"])
    assert result.exit_code == 1
    assert result.final_refs["src:vm2"] == 2
    assert any("source vm2: refs back to 1, got 2" in f for f in result.failures)
    assert "checks FAILED" in out
    assert out.rstrip().endswith("result: FAILED (exit 1)")


def test_a_hung_migration_is_reported(monkeypatch):
    original = demo.Migration.perform3

    def slow_perform3(self):
        if self.name == "vm1":
            time.sleep(2.5)
        return original(self)

    monkeypatch.setattr(demo.Migration, "perform3", slow_perform3)
    result, out = run(["--domains", "2", "--threads", "2", "--seed", "1", "-q",
                       "--watchdog", "0.8"])
    assert result.exit_code == 2
    assert "HUNG" in out


def test_bad_arguments_are_refused(capsys):
    for argv in (["--domains", "0"], ["--threads", "-1"], ["--timeout", "0"],
                 ["--quiet", "--verbose"], ["--domains", "x"]):
        with pytest.raises(SystemExit) as exc:
            demo.main(argv)
        assert exc.value.code == 2, argv
    capsys.readouterr()


def test_main_module_dispatch(capsys):
    from pymigjob.__main__ import main

    assert main([]) == 2
    assert "usage: python -m pymigjob" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out
    assert main(["nonsense"]) == 2
    assert "unknown command" in capsys.readouterr().err
    assert main(["demo", "--domains", "2", "--threads", "2", "--seed", "4", "-q"]) == 0
    assert "result: OK" in capsys.readouterr().out


def test_bench_without_the_bench_module_says_so(capsys, monkeypatch):
    """A build without pymigjob.cli.bench: `bench` says so (simulated: None in
    sys.modules makes the import fail as a missing module does)."""
    from pymigjob.__main__ import main

    monkeypatch.setitem(sys.modules, "pymigjob.cli.bench", None)
    assert main(["bench"]) == 2
    assert "not available" in capsys.readouterr().err


def test_bench_failing_inside_is_not_reported_as_missing(monkeypatch):
    """Only pymigjob.cli.bench itself missing is "not available": a module it
    imports that is missing is a real error."""
    import importlib

    from pymigjob import __main__

    def fake_import(name):
        raise ModuleNotFoundError("No module named 'numpy'", name="numpy")

    monkeypatch.setattr(importlib, "import_module", fake_import)
    with pytest.raises(ModuleNotFoundError, match="numpy"):
        __main__.main(["bench"])


def _pyproject_version_source() -> str:
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    # one source of truth: pyproject takes the version from pymigjob/_version.py
    assert not re.search(r"^version\s*=", project, re.M), "a second, literal version"
    assert re.search(r'^dynamic\s*=\s*\[[^]]*"version"', project, re.M)
    m = re.search(r'^version\s*=\s*\{\s*attr\s*=\s*"([\w.]+)"\s*\}',
                  text.split("[tool.setuptools.dynamic]", 1)[1], re.M)
    assert m, "no [tool.setuptools.dynamic] version"
    return m.group(1)


def test_version_has_one_source():
    import importlib.metadata

    import pymigjob
    from pymigjob import _version

    assert _pyproject_version_source() == "pymigjob._version.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", pymigjob.__version__)
    assert pymigjob.__version__ == _version.__version__
    assert importlib.metadata.version("pymigjob") == pymigjob.__version__


def test_main_version(capsys):
    import pymigjob
    from pymigjob.__main__ import main

    for flag in ("--version", "-V"):
        assert main([flag]) == 0
        assert capsys.readouterr().out == f"pymigjob {pymigjob.__version__}\n"
    assert main(["--help"]) == 0
    assert "--version" in capsys.readouterr().out


def test_python_dash_m_pymigjob_version_subprocess():
    import pymigjob

    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "pymigjob", "--version"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"pymigjob {pymigjob.__version__}\n" and proc.stderr == ""


def test_python_dash_m_pymigjob_demo_subprocess():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pymigjob", "demo", "--domains", "3"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    out = proc.stdout
    assert "timeline of" in out
    assert re.search(r"migrations\s+3 started", out)
    assert re.search(r"invariants\s+all \d+ checks passed", out)
    assert "result: OK (exit 0)" in out
    assert elapsed < 30
