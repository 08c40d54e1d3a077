"""ParkTwin as users install it: the sdist and wheel built from this tree, the wheel installed in
a fresh virtual environment outside the repository, the shipped examples and their defaults.

The sdist and the wheel are built once per session, without build isolation (the build back end
comes from the dev environment; no download): ~5 s. The fresh environment borrows the dev
environment's third-party packages through a .pth line that only reaches them, not the
editable ParkTwin (.pth files in that folder are not processed), so what is tested is the wheel.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import venv
import zipfile
from email.parser import HeaderParser
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from typer.testing import CliRunner

from cli import app
from twin import installed

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
runner = CliRunner()


def _git_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> dict[str, Path]:
    """The sdist and the wheel of this tree (`scripts/check_install.sh` builds the wheel from
    the sdist in an isolated build, as PyPI users get it; this is the fast equivalent)."""
    out = tmp_path_factory.mktemp("dist")

    def build(kind: str, source: Path) -> None:
        command = [sys.executable, "-m", "build", "--no-isolation", kind, "--outdir", str(out)]
        subprocess.run(
            [*command, str(source)],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )

    build("--sdist", ROOT)
    # the wheel from the unpacked sdist, as pip builds it: never from the tree's own build/
    # folder, whose leftovers (a module that has since moved) would end up in the wheel
    unpacked = tmp_path_factory.mktemp("sdist")
    with tarfile.open(next(out.glob("*.tar.gz"))) as tar:
        tar.extractall(unpacked, filter="data")
    build("--wheel", next(unpacked.iterdir()))
    return {"sdist": next(out.glob("*.tar.gz")), "wheel": next(out.glob("*.whl"))}


@pytest.fixture(scope="session")
def fresh(dist, tmp_path_factory) -> Path:
    """A new venv outside the repository with the wheel installed; returns its bin folder."""
    env = tmp_path_factory.mktemp("venv")
    venv.create(env, with_pip=False)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(env), "platbase": str(env)}))
    deps = Path(sysconfig.get_path("purelib"))  # this (dev) environment's packages
    (purelib / "dev_dependencies.pth").write_text(f"{deps}\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env / "bin" / "python"),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(dist["wheel"]),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return env / "bin"


def _run(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=300, env=env, **kwargs
    )


# -- the sdist ----------------------------------------------------------------------------------
def test_sdist_holds_every_tracked_file_the_tests_and_readme_use(dist) -> None:
    with tarfile.open(dist["sdist"]) as tar:
        names = {name.partition("/")[2] for name in tar.getnames()}
    # Only the repository's machinery stays out (.gitignore): tests, scenarios, baselines,
    # docs, notebooks, benchmarks and scripts all ship, so the sdist's tests can run.
    missing = sorted(set(_git_files()) - names - {".gitignore"})
    assert missing == [], f"tracked files missing from the sdist (MANIFEST.in): {missing}"
    assert {"LICENSE", "setup.py", "tests/test_install.py", "scenarios/surface_lot.yaml"} <= names


# -- the wheel ----------------------------------------------------------------------------------
def test_wheel_installs_only_twin_and_parktwin_at_the_top(dist) -> None:
    with zipfile.ZipFile(dist["wheel"]) as whl:
        names = whl.namelist()
        metadata = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    tops = {n.split("/")[0] for n in names if ".dist-info/" not in n}
    assert tops == {"twin", "parktwin"}, tops  # no generic `cli` or `adapters`
    assert "parktwin/cli/__init__.py" in names and "parktwin/adapters/__init__.py" in names
    assert "parktwin/cli/__main__.py" in names  # python -m parktwin.cli
    assert not [
        n for n in names if n.startswith("parktwin/") and n.count("/") == 1 and n.endswith(".py")
    ], "no module from the root (setup.py)"
    # every module of the repository's packages is in the wheel, under its installed name
    modules = {
        f"parktwin/{p}" if p.split("/")[0] in ("adapters", "cli") else p
        for p in _git_files()
        if p.endswith(".py") and p.split("/")[0] in ("twin", "adapters", "cli")
    }
    assert modules <= set(names), sorted(modules - set(names))
    shipped = {n.removeprefix("parktwin/") for n in names if n.startswith("parktwin/")}
    data = {p for p in _git_files() if p.startswith("scenarios/") and p.endswith(".yaml")}
    data |= {p for p in _git_files() if p.startswith("reports/baselines/")}
    assert data <= shipped, sorted(data - shipped)
    meta = HeaderParser().parsestr(metadata.decode())
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Author"] == "ParkTwin developers"
    assert meta["Version"] == __import__("twin").__version__
    assert meta.get_all("Classifier") and meta["Keywords"]
    assert any(n.endswith("licenses/LICENSE") for n in names)


def test_installed_wheel_finds_its_examples_outside_the_repository(fresh, tmp_path) -> None:
    # Light commands only (each heavy one costs seconds of imports); scripts/check_install.sh
    # also runs a copied example and the whole locking study from an installed wheel.
    python, parktwin = str(fresh / "python"), str(fresh / "parktwin")
    script = (
        "import twin, parktwin.cli as cli\n"
        "print(twin.__file__, cli.__file__, cli.DEFAULT_LOCKING_STUDY.is_file())"
    )
    where = _run([python, "-c", script], cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert str(ROOT) not in where.stdout, f"imported from the repository: {where.stdout}"
    assert where.stdout.split()[-1] == "True", "`parktwin locking` has no default study"
    version = _run([parktwin, "--version"], cwd=tmp_path)
    assert version.stdout.strip() == f"parktwin {__import__('twin').__version__}"
    copied = _run([parktwin, "examples", "--copy", "x"], cwd=tmp_path)
    assert copied.returncode == 0, copied.stderr
    assert (tmp_path / "x" / "surface_lot.yaml").is_file()
    assert (tmp_path / "x" / "studies" / "locking_study.yaml").is_file()
    # a sweep file names its scenario relative to itself: the copy keeps the folders
    sweep = (tmp_path / "x" / "sweeps" / "surface_lot_price_demand.yaml").read_text()
    assert "scenario: ../surface_lot.yaml" in sweep
    # the gate's defaults: the shipped scenarios, each with its shipped baseline
    gate = _run(
        [
            python,
            "-c",
            "from twin import installed; "
            "print(len(installed.gate_scenarios()), "
            "all((installed.baselines_dir() / (p.stem + '.json')).is_file() "
            "for p in installed.gate_scenarios()))",
        ],
        cwd=tmp_path,
    )
    assert gate.stdout.split() == [str(len(list((ROOT / "scenarios").glob("*.yaml")))), "True"]


def test_core_imports_with_nothing_but_the_standard_library(fresh, tmp_path) -> None:
    # A gate controller's install: the wheel without any dependency, not even the mandatory
    # typer and rich. -S: no site processing, so only the standard library and the wheel.
    purelib = next((fresh.parent / "lib").glob("python3*/site-packages"))
    script = (
        f"import sys; sys.path.append({str(purelib)!r})\n"
        "import importlib, pkgutil, twin.core\n"
        "for m in pkgutil.walk_packages(twin.core.__path__, 'twin.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(twin.core.__file__)\n"
        "import typer"
    )
    out = _run([str(fresh / "python"), "-S", "-c", script], cwd=tmp_path)
    assert out.stdout.startswith(str(purelib)), out.stderr
    # the control: this interpreter sees no third-party package, or the check would be void
    assert "No module named 'typer'" in out.stderr


# -- metadata and dependencies ------------------------------------------------------------------
def _requirements() -> dict[str, list[Requirement]]:
    project = PYPROJECT["project"]
    groups = {"": project["dependencies"], **project["optional-dependencies"]}
    return {name: [Requirement(r) for r in reqs] for name, reqs in groups.items()}


def test_every_dependency_has_an_upper_bound() -> None:
    for group, reqs in _requirements().items():
        for req in reqs:
            if req.name == "parktwin":
                continue  # an extra naming other extras
            assert any(s.operator in ("<", "<=", "~=", "==") for s in req.specifier), (
                f"{req} ({group or 'mandatory'}) has no upper bound"
            )
    build = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    assert all(any(s.operator == "<" for s in r.specifier) for r in build)


def test_the_core_install_is_light_and_extras_cover_the_heavy_stack() -> None:
    reqs = _requirements()
    assert {r.name for r in reqs[""]} == {"typer", "rich"}
    assert {"sim", "dask", "plot", "mqtt", "all", "dev"} <= set(reqs)
    heavy = {"numpy", "scipy", "pandas", "pyarrow", "simpy", "pydantic", "matplotlib", "dask"}
    assert not heavy & {r.name for r in reqs[""]}
    # every extra but dev is in `all`; the bootstrap installs all and dev
    (everything,) = reqs["all"]
    assert set(everything.extras) == set(reqs) - {"", "all", "dev"}, (
        "every optional extra belongs in `all` (and its modules in twin.installed.EXTRAS)"
    )
    assert '".[all,dev]"' in (ROOT / "scripts" / "bootstrap.sh").read_text()


def test_the_missing_extra_hint_knows_every_optional_module() -> None:
    # installed.EXTRAS names, for a module a command may miss, the extra that installs it
    dists = packages_distributions()
    extras = {
        extra: {r.name.lower() for r in reqs if r.name != "parktwin"}
        for extra, reqs in _requirements().items()
        if extra not in ("", "all", "dev")
    }
    for module, extra in installed.EXTRAS.items():
        assert extra in extras, f"{module}: no extra {extra!r} in pyproject.toml"
        assert {d.lower() for d in dists.get(module, [])} & extras[extra], (module, extra)
    for extra, names in extras.items():
        for name in names:  # every optional distribution has a module that points at it
            tops = [m for m, ds in dists.items() if name in (d.lower() for d in ds)]
            assert any(installed.EXTRAS.get(m) == extra for m in tops), (name, extra, tops)


def test_shipped_code_does_not_import_the_repository_names() -> None:
    # Installed, cli/ is parktwin.cli and adapters/ is parktwin.adapters: an absolute
    # `import adapters...` or `import cli` works in the repository and breaks in the wheel.
    shipped = [
        p
        for p in _git_files()
        if p.endswith(".py") and p.split("/")[0] in ("twin", "adapters", "cli")
    ]
    bad = []
    for path in shipped:
        for node in ast.walk(ast.parse((ROOT / path).read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            bad += [
                f"{path}:{node.lineno} {n}" for n in names if n.split(".")[0] in ("cli", "adapters")
            ]
    assert bad == [], (
        "import `parktwin.adapters...` / `parktwin.cli` (or relatively inside adapters/ and "
        f"cli/): {bad}"
    )


def test_licence_is_apache_2() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License")
    assert "Version 2.0, January 2004" in text
    assert PYPROJECT["project"]["license"] == "Apache-2.0"


# -- the shipped files and `parktwin examples` ---------------------------------------------------
def test_defaults_resolve_through_the_package() -> None:
    root = installed.package_root()
    assert installed.locking_study() == root / "scenarios" / "studies" / "locking_study.yaml"
    assert installed.locking_study().is_file()
    assert [p.name for p in installed.gate_scenarios()] == sorted(
        p.name for p in (ROOT / "scenarios").glob("*.yaml")
    )
    assert {p.stem for p in installed.gate_scenarios()} <= {
        p.stem for p in installed.baselines_dir().glob("*.json")
    }


def test_examples_lists_every_shipped_file() -> None:
    result = runner.invoke(app, ["examples"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    tracked = [p for p in _git_files() if p.startswith("scenarios/") and p.endswith(".yaml")]
    for path in tracked:
        assert path.removeprefix("scenarios/") in result.output
    assert "parktwin locking FILE" in result.output and "--copy DIR" in result.output
    kinds = {e.name: e.kind for e in installed.examples()}
    assert kinds["surface_lot.yaml"] == "scenario"
    assert kinds["sweeps/surface_lot_price_demand.yaml"] == "sweep"
    assert kinds["studies/locking_study.yaml"] == "study"


def test_examples_copy_keeps_folders_and_never_overwrites(tmp_path) -> None:
    dest = tmp_path / "mine"
    result = runner.invoke(app, ["examples", "--copy", str(dest)])
    assert result.exit_code == 0, result.output
    copied = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert copied == sorted(e.name for e in installed.examples())
    assert (dest / "surface_lot.yaml").read_bytes() == (
        ROOT / "scenarios" / "surface_lot.yaml"
    ).read_bytes()
    (dest / "surface_lot.yaml").write_text("# my edits\n")
    again = runner.invoke(app, ["examples", "--copy", str(dest)])
    assert again.exit_code == 2
    assert "already exists" in again.output and "Traceback" not in again.output
    assert (dest / "surface_lot.yaml").read_text() == "# my edits\n"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    refused = runner.invoke(app, ["examples", "--copy", str(a_file)])
    assert refused.exit_code == 2 and "not a folder" in refused.output


def test_regress_without_arguments_checks_the_shipped_scenarios(tmp_path, monkeypatch) -> None:
    # from a folder that has no scenarios/ or reports/: the defaults come from the package
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["regress", "--replications", "1", "--baseline", "none"])
    # no baselines in ./none: exit 2, and every shipped scenario is named as missing one
    assert result.exit_code == 2, result.output
    for path in (ROOT / "scenarios").glob("*.yaml"):
        assert path.stem in result.output


def test_report_finds_the_shipped_scenario_from_any_folder(tmp_path, monkeypatch) -> None:
    from twin.report import find_scenario

    monkeypatch.chdir(tmp_path)
    found = find_scenario("surface_lot", tmp_path / "results")
    assert found is not None and found.resolve() == (installed.examples_dir() / "surface_lot.yaml")
