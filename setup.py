import sysconfig

from setuptools import setup

# everything else is in pyproject.toml; cffi_modules has no pyproject form.
# One cp310-abi3 wheel serves every GIL-enabled CPython >= 3.10; a
# free-threaded interpreter (3.14t) cannot use the limited API
# (Py_LIMITED_API and Py_GIL_DISABLED are incompatible before 3.15, and cffi
# builds the module without it there), so it gets its own cp314t wheel.
options = {}
if not sysconfig.get_config_var("Py_GIL_DISABLED"):
    options["bdist_wheel"] = {"py_limited_api": "cp310"}

setup(
    cffi_modules=["build_ffi.py:ffibuilder"],
    options=options,
)
