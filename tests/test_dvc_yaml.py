"""dvc.yaml lists exactly the code each stage runs: every `stages/` module its command imports, directly or
through another module, and no other, so a code change reruns the stages it can affect and only those. A stage that
imports every module of a `stages/lib/` package names the package's folder; otherwise it names the files."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def imported_files(path: Path) -> set[str]:
    """The `stages/` source files one module imports (at any depth in the file, e.g. inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stages"):
            names = [node.module + "." + alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.startswith("stages")]
        else:
            continue
        for name in names:
            for candidate in (
                Path(*name.split(".")).with_suffix(".py"),
                Path(*name.split(".")[:-1]).with_suffix(".py"),
            ):
                if (ROOT / candidate).is_file():
                    found.add(candidate.as_posix())
                    # Importing a module runs its package's __init__ first (a docstring only in stages/lib).
                    found.add((candidate.parent / "__init__.py").as_posix())
                    break
    return found


def code_closure(module: str) -> set[str]:
    """The stage module, the package `__init__` `python -m` runs first, and everything they import, transitively."""
    pending = {Path(*module.split(".")).with_suffix(".py").as_posix(), "stages/__init__.py"}
    seen: set[str] = set()
    while pending:
        current = pending.pop()
        seen.add(current)
        pending |= imported_files(ROOT / current) - seen
    return {path for path in seen if has_code(ROOT / path)}


def has_code(path: Path) -> bool:
    """False for an empty or docstring-only module (a package's `__init__`): it cannot change what a stage does."""
    body = ast.parse(path.read_text()).body
    return bool(
        body[1:] if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else body
    )


def listed_code(deps: list[str]) -> set[str]:
    """The code files a stage's deps name: `.py` files, and every module with code in a named `stages/` folder."""
    files = {dep for dep in deps if dep.endswith(".py")}
    for dep in deps:
        if dep.startswith("stages/") and (ROOT / dep).is_dir():
            files |= {p.relative_to(ROOT).as_posix() for p in (ROOT / dep).rglob("*.py") if has_code(p)}
    return files


PACKAGES = sorted(p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "stages/lib").glob("*/__init__.py"))


def stage_definitions() -> dict[str, dict]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


def test_every_stage_lists_exactly_the_code_it_runs():
    for name, stage in stage_definitions().items():
        module = stage["cmd"].split()[2]
        listed = listed_code(stage["deps"])
        assert listed == code_closure(module), f"dvc.yaml stage {name}: code deps differ from what {module} imports"


def test_a_stage_that_runs_a_whole_package_names_its_folder():
    """So that dvc.yaml stays short: file by file only where a stage imports part of a package."""
    for name, stage in stage_definitions().items():
        for package in PACKAGES:
            modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / package).glob("*.py") if has_code(p)}
            files = {dep for dep in stage["deps"] if dep.startswith(package + "/")}
            assert not (files and files == modules), f"dvc.yaml stage {name}: name {package} instead of its files"


def test_the_library_is_a_handful_of_packages_each_saying_what_it_holds():
    assert len(PACKAGES) >= 4 and not [p for p in (ROOT / "stages/lib").glob("*.py") if has_code(p)]
    for package in PACKAGES:
        doc = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
        assert doc and "Editing" in doc, f"{package}/__init__.py should say what it holds and what editing it reruns"
        assert not has_code(ROOT / package / "__init__.py")


def test_closure_follows_imports_inside_the_library():
    # clustering.py imports pruning.py, so a stage that imports only clustering still depends on pruning.
    assert "stages/lib/compress/pruning.py" in code_closure("stages.lib.compress.clustering")
    assert "stages/lib/core/io.py" in code_closure("stages.prepare")


COMPRESSION = {"stages/lib/compress/pruning.py", "stages/lib/compress/clustering.py", "stages/lib/compress/qat.py"}
TENSORFLOW = {
    "stages/lib/keras/model.py",
    "stages/lib/keras/backbones.py",
    "stages/lib/keras/training.py",
    "stages/lib/keras/conversion.py",
}


def test_rerun_scopes_follow_meaning():
    """Editing tfmot code must not retrain the baseline; evaluation and TFLM code need no TensorFlow; the report
    runs on metrics alone."""
    assert not code_closure("stages.train") & COMPRESSION
    assert not code_closure("stages.evaluate") & (COMPRESSION | TENSORFLOW)
    assert not code_closure("stages.micro") & (COMPRESSION | TENSORFLOW)
    assert not code_closure("stages.report") & (
        COMPRESSION | TENSORFLOW | {"stages/lib/runtime/tflm.py", "stages/lib/core/data.py"}
    )
    # Students cluster (tfmot) but never quantization-aware train; their teacher uses no tfmot code; the firmware
    # stage only copies bytes.
    assert not code_closure("stages.student") & {"stages/lib/compress/qat.py"}
    assert not code_closure("stages.teacher") & (COMPRESSION | {"stages/lib/keras/conversion.py"})
    assert not code_closure("stages.firmware") & (
        COMPRESSION | TENSORFLOW | {"stages/lib/runtime/tflm.py", "stages/lib/core/data.py"}
    )


def test_library_modules_are_each_used_by_a_stage():
    used = set().union(*(code_closure(stage["cmd"].split()[2]) for stage in stage_definitions().values()))
    library = {path.relative_to(ROOT).as_posix() for path in (ROOT / "stages/lib").rglob("*.py") if has_code(path)}
    assert library <= used, f"modules no stage runs: {sorted(library - used)}"


def test_the_lock_holds_exactly_the_stages_dvc_yaml_defines():
    """DVC keeps the lock entries of stages that left dvc.yaml; stale ones confuse `dvc exp run` and its log."""
    import subprocess

    listed = subprocess.run(
        ["dvc", "stage", "list", "--name-only"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    locked = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    assert sorted(locked) == sorted(listed)
