"""pyproject.toml, requirements.lock and environment.yml must agree about every dependency."""

import re
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def lock():
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", line)
        assert m, f"requirements.lock: {line!r} is not an exact pin (name==version)"
        pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def test_lock_pins_every_pyproject_dependency_within_its_range():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = lock()
    deps = meta["dependencies"] + [d for extra in meta.get("optional-dependencies", {}).values() for d in extra]
    for dep in deps:
        req = Requirement(dep)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in requirements.lock"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {req.name}=={pins[name]}, outside pyproject.toml's {req.specifier}")


def test_lock_pins_every_direct_requirement():
    pins = lock()
    for line in (ROOT / "requirements.in").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            name = canonicalize_name(req.name)
            assert name in pins, f"{req.name} is in requirements.in but not in requirements.lock"
            assert req.specifier.contains(pins[name], prereleases=True)


def test_the_book_extensions_are_locked():
    """The book's bibliography (sphinxcontrib-bibtex, via jupyter-book) and its browser test's driver."""
    pins = lock()
    assert "sphinxcontrib-bibtex" in pins and "jupytext" in pins and "papermill" in pins


def test_jupyter_book_is_1x():
    assert lock()["jupyter-book"].startswith("1."), "the book is a Jupyter Book 1.x book (pin jupyter-book<2)"


def test_environment_yml_installs_the_same_locked_set():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-r requirements.lock" in pip_section, "environment.yml must install requirements.lock"
    assert "-e ." in pip_section
    # no conda package may shadow a locked one with another version
    conda_pkgs = [d for d in deps if isinstance(d, str)]
    pins = lock()
    for d in conda_pkgs:
        name, _, version = d.partition("=")
        if canonicalize_name(name) in pins:
            assert version.strip("=") == pins[canonicalize_name(name)], f"environment.yml pins {d}, the lock {pins[canonicalize_name(name)]}"
    python = next(d for d in conda_pkgs if d.startswith("python"))
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains(python.split("=")[1] + ".0"), f"{python} does not satisfy requires-python {requires}"


def test_installed_versions_match_the_lock():
    from importlib.metadata import PackageNotFoundError, version

    for name, pinned in lock().items():
        try:
            got = version(name)
        except PackageNotFoundError:
            raise AssertionError(f"{name} is locked but not installed; run `make env`") from None
        assert got == pinned, f"{name} {got} is installed, the lock says {pinned}"


def test_python_version():
    assert sys.version_info >= (3, 11)
