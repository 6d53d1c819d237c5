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
