"""Which files an install holds; the project's metadata is in pyproject.toml.

The repository keeps its layout: `twin/` (the library), `cli/` (the `parktwin` command),
`adapters/`, and the example scenarios and baselines in `scenarios/` and `reports/baselines/`.
Installed, everything except `twin` lives inside one `parktwin` package, so the generic names
`cli` and `adapters` never land at the top of site-packages (PyPI has an unrelated `adapters`):

    twin/...                          the library, imported as `twin` (twin.api, twin.core, ...)
    parktwin/cli/...                  <- cli/
    parktwin/adapters/...             <- adapters/
    parktwin/scenarios/**/*.yaml      <- scenarios/ (examples, studies/, sweeps/, scale/)
    parktwin/reports/baselines/*.json <- reports/baselines/

`package_dir` maps `parktwin` onto the repository root, so an editable install serves the
repository's own files (no copy to keep in step) and twin.installed finds the data the same
way in both. None of the root's own modules (setup.py) is installed.
"""

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

#: Data shipped inside the parktwin package, relative to the repository root.
PACKAGE_DATA = [
    "scenarios/*.yaml",
    "scenarios/*/*.yaml",
    "reports/baselines/*.json",
]


class BuildPy(build_py):
    """No module at the repository root belongs to the package (setup.py is not shipped)."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        if package == "parktwin":
            modules = []
        return modules


setup(
    cmdclass={"build_py": BuildPy},
    package_dir={"parktwin": "."},
    packages=[
        *find_packages(include=["twin", "twin.*"]),
        "parktwin",
        "parktwin.cli",
        *(f"parktwin.{name}" for name in find_packages(include=["adapters", "adapters.*"])),
    ],
    package_data={"parktwin": PACKAGE_DATA},
)
