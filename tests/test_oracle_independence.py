"""The pure-Python oracles (allocsim.kernel.oracle) are independent of the numba models they check: from the
kernel wing they import only the event format (allocsim.kernel.program) and each other. Computed from the
source with ast, function-local imports included, so a bug in the models' configuration or charging code
cannot reach both sides of a differential test."""

import ast
from pathlib import Path

import pytest

ORACLE = Path(__file__).resolve().parents[1] / "lib" / "allocsim" / "kernel" / "oracle"
ALLOWED = ("allocsim.kernel.program", "allocsim.kernel.oracle")


def kernel_imports(path: Path) -> set[str]:
    """Every module of ``allocsim.kernel`` that ``path`` imports (``import x``, ``from x import y`` and
    ``from allocsim.kernel import y`` alike; relative imports resolved against the oracle package)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = "allocsim.kernel.oracle".split(".")
                pkg = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                base = ".".join(pkg + ([base] if base else []))
            if base == "allocsim":
                names = [f"allocsim.{a.name}" for a in node.names]
            elif base == "allocsim.kernel":
                names = [f"{base}.{a.name}" for a in node.names]
            else:
                names = [base]
        else:
            continue
        out.update(n for n in names if n == "allocsim.kernel" or n.startswith("allocsim.kernel."))
    return out


@pytest.mark.parametrize("path", sorted(ORACLE.glob("*.py")), ids=lambda p: p.name)
def test_oracle_imports_only_the_event_format_from_the_kernel_wing(path):
    bad = {m for m in kernel_imports(path)
           if m != "allocsim.kernel" and not any(m == a or m.startswith(a + ".") for a in ALLOWED)}
    bad |= {m for m in kernel_imports(path) if m == "allocsim.kernel"}  # a bare "import allocsim.kernel"
    assert not bad, f"{path.name} imports {sorted(bad)} from the numba side"


def test_the_check_sees_the_imports_it_should(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("from allocsim.kernel import slub\nimport allocsim.kernel.stats\ndef g():\n"
                 "    from allocsim.kernel.slub import configure\nfrom allocsim.kernel.program import ALLOC\n"
                 "from . import slab_pages\n")
    assert kernel_imports(f) == {"allocsim.kernel.slub", "allocsim.kernel.stats", "allocsim.kernel.program",
                                 "allocsim.kernel.oracle"}
    f.write_text("import allocsim.kernel\nfrom allocsim import kernel\n")
    assert kernel_imports(f) == {"allocsim.kernel"}


def facts_imports(path: Path, module: str) -> bool:
    """Whether ``path`` imports ``module`` of the facts wing (``import``, ``from allocsim.facts import x``,
    ``from allocsim.facts.x import y``, function-local ones included)."""
    pkg, _, name = module.rpartition(".")
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import) and any(a.name == module or a.name.startswith(module + ".") for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and not node.level:
            if node.module == module or (node.module or "").startswith(module + "."):
                return True
            if node.module == pkg and any(a.name == name for a in node.names):
                return True
    return False


@pytest.mark.parametrize("path", sorted(ORACLE.glob("*.py")), ids=lambda p: p.name)
def test_oracle_reads_the_step_files_and_the_cpu_itself(path):
    """The numba models' access table and charges come from allocsim.facts.steps and their cache geometry from
    allocsim.facts.cpu; the oracles read data/kernel/steps.yaml and cpu.yaml themselves (oracle/steps.py,
    oracle/memory.py, oracle/cache.py)."""
    for module in ("allocsim.facts.steps", "allocsim.facts.cpu"):
        assert not facts_imports(path, module), f"{path.name} imports {module}"


def test_the_facts_check_sees_the_imports_it_should(tmp_path):
    f = tmp_path / "x.py"
    for src in ("from allocsim.facts import steps\n", "import allocsim.facts.steps\n",
                "def g():\n    from allocsim.facts.steps import access_table\n"):
        f.write_text(src)
        assert facts_imports(f, "allocsim.facts.steps"), src
    f.write_text("from allocsim.facts import paths, structs\nfrom allocsim.kernel.oracle import steps\n")
    assert not facts_imports(f, "allocsim.facts.steps")
