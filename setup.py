"""Build step pyproject.toml cannot express: ship the hazard log inside the package.

The log lives at the repository root, beside the code it is about; an installed service
reads it from web/safety/shipped/ (see web/safety/config.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's own log
        shipped = Path(self.build_lib) / "web" / "safety" / "shipped"
        shipped.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(__file__).parent / "hazard_log.md", shipped / "hazard_log.md")


setup(cmdclass={"build_py": BuildPy})
