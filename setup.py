# The cffi shim is built as part of `pip install` (cffi_modules needs setup.py).
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithSpec(build_py):
    """Ship the top-level spec/ schemas inside the package as ocirt/spec/."""

    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "ocirt", "spec")
        os.makedirs(dest, exist_ok=True)
        for name in os.listdir("spec"):
            if name.endswith(".json"):
                shutil.copy(os.path.join("spec", name), dest)


setup(cffi_modules=["ocirt/_shim/build.py:ffibuilder"], cmdclass={"build_py": BuildPyWithSpec})
