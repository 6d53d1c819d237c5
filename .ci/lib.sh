# Sourced by the .ci scripts (bash).  Not executable on its own.
#
# PY: the Python every CI script uses.  .ci/run makes its own virtual
# environment (.ci/venv) and exports PYTHON=<that venv>/bin/python; run by
# hand, a script uses $PYTHON if set, else the `python` on PATH (your
# activated venv).  Under CI=true a missing $PYTHON is an error: CI never
# falls back to the machine's Python.

if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"
elif [ "${CI:-}" = true ]; then
    echo "${0##*/}: PYTHON is not set; under CI the scripts run with .ci/run's venv" >&2
    exit 1
else
    PY="$(command -v python || command -v python3)" || {
        echo "${0##*/}: no python on PATH (activate a venv or set PYTHON)" >&2
        exit 1
    }
fi

# suite_from_install WORKDIR COMMAND...
#
# Runs the test suite against the pymigjob installed where COMMAND (a python,
# or a wrapper and a python: `env X=1 venv/bin/python`) finds it, not against
# the sources: tests/ and pyproject.toml (pytest's settings) are copied to
# WORKDIR and `COMMAND -m pytest` runs there, with PYMIGJOB_EXPECT_INSTALLED=1
# so that tests/conftest.py refuses to run unless `pymigjob` resolves to
# site-packages.  Needs ROOT (the work tree).
suite_from_install() {
    local dir="$1"
    shift
    mkdir -p "$dir"
    (cd "$ROOT" && git ls-files -z tests pyproject.toml | xargs -0 cp --parents -t "$dir")
    (
        cd "$dir"
        export PYMIGJOB_EXPECT_INSTALLED=1
        "$@" -m pytest -p no:cacheprovider -q
    )
}
