from setuptools import setup

# everything else is in pyproject.toml; cffi_modules has no pyproject form
setup(
    cffi_modules=["build_ffi.py:ffibuilder"],
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
