"""No lakeforge module may shadow a standard-library module.

``spark-submit`` runs ``src/lakeforge/__main__.py`` as a script, which puts
``src/lakeforge/`` first on ``sys.path``: a ``lakeforge/secrets.py`` there once replaced
the standard library's ``secrets`` for every import in the driver, and a silver step
failed with "cannot import name randbits". ``__main__`` now drops that folder from the
path; this keeps new modules from depending on it. (``io`` is exempt: the interpreter
imports the standard ``io`` before any script runs, so ``lakeforge/io`` never shadows it.)
"""

from __future__ import annotations

import sys

from tests.helpers import REPO


def test_no_top_level_module_shadows_the_standard_library() -> None:
    package = REPO / "src" / "lakeforge"
    names = {p.stem for p in package.glob("*.py")} | {
        p.name for p in package.iterdir() if p.is_dir() and (p / "__init__.py").is_file()
    }
    names -= {"__init__", "__main__", "io"}
    assert names, "no modules found"
    assert sorted(names & set(sys.stdlib_module_names)) == []


def test_main_as_a_script_drops_its_own_folder_from_the_path() -> None:
    import subprocess

    main = REPO / "src" / "lakeforge" / "__main__.py"
    code = (
        "import runpy, sys; sys.argv = ['x', '--version']; "
        f"sys.path.insert(0, {str(main.parent)!r}); "
        f"runpy.run_path({str(main)!r}, run_name='not_main'); "
        f"print({str(main.parent)!r} in sys.path)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
