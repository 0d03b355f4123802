"""The package as a stranger installs it: a wheel, non-editable, in a fresh virtual environment, inside a
throwaway repository whose root holds its own ``conformance.py``, ``conformance/``, ``reference/`` and
``fixtures/``.

The plugin runs there on a correct NumPy port (passes, and the fixture items ran: the corpus ships in the
wheel) and on one with a planted bug (fails in the right check); the port's own tests, which import its own
``conformance`` module, still pass.
"""

import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent

PORT = '''
"""The port under test: a thin Keras-API wrapper, as a port author might keep one (conformance.py is theirs)."""
from optimizer_conformance.fast_optimizers.conformance import NumpyAdapter

PLANTED_BUG = {bug}


class Adapter(NumpyAdapter):
    algorithms = ("adam",)
    dtypes = ("float32",)

    def start(self, algorithm, config, variables, dtype, exclude):
        if PLANTED_BUG:
            config = {{**config, "beta_2": config["beta_2"] + 0.0005}}  # a mistyped constant
        super().start(algorithm, config, variables, dtype, exclude)


def house_rule():
    return "the repository's own conformance module"
'''


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    """The wheel built from this tree, installed (not editable) into a new virtual environment."""
    root = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                            str(root / "dist"), str(PROJECT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = (root / "dist").glob("optimizer_conformance-*.whl")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel), "pytest"],
                               capture_output=True, text=True, timeout=900,
                               env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    return python


def _repository(base: Path, bug: bool) -> Path:
    repo = base / ("buggy" if bug else "correct")
    (repo / "tests").mkdir(parents=True)
    (repo / "conformance.py").write_text(PORT.format(bug=bug))
    # Folders and files named like this project's own: they must stay the repository's.
    (repo / "reference").mkdir()
    (repo / "reference" / "__init__.py").write_text("raise ImportError('the repository reference package')\n")
    (repo / "fixtures").mkdir()
    (repo / "fixtures" / "adam-basic.json").write_text("{not this project's fixture}\n")
    (repo / "tests" / "test_own_module.py").write_text(textwrap.dedent('''
        import conformance


        def test_the_repository_imports_its_own_conformance_module():
            assert conformance.house_rule() == "the repository's own conformance module"
    '''))
    (repo / "pyproject.toml").write_text(textwrap.dedent('''
        [tool.pytest.ini_options]
        pythonpath = ["."]
        optconf_candidate = "conformance:Adapter"
        optconf_algorithms = "adam"
        optconf_dtypes = "float32"
        optconf_profile = "quick"
        optconf_checks = "pipeline,fixtures"
    '''))
    return repo


def _pytest(python: Path, repo: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(python), "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-q"], cwd=repo,
                          capture_output=True, text=True, timeout=900, env=env)


def test_nothing_installs_at_the_top_of_site_packages_but_one_import_root(environment):
    out = subprocess.run([str(environment), "-c", "import sysconfig, os; "
                          "print(sorted(os.listdir(sysconfig.get_paths()['purelib'])))"],
                         capture_output=True, text=True, timeout=60)
    names = set(eval(out.stdout))
    assert "optimizer_conformance" in names
    assert not names & {"reference", "conformance", "fixtures", "fast_optimizers"}, names


def test_a_correct_port_passes_with_every_fixture_item_in_a_repository_with_colliding_names(environment, tmp_path):
    repo = _repository(tmp_path, bug=False)
    out = _pytest(environment, repo)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    fixture_items = [line for line in out.stdout.splitlines()
                     if line.startswith("PASSED optconf::adam::float32::fixtures/")]
    assert len(fixture_items) >= 20, out.stdout[-4000:]  # the corpus came with the wheel
    assert "PASSED tests/test_own_module.py::test_the_repository_imports_its_own_conformance_module" in out.stdout


def test_a_port_with_a_planted_bug_fails_in_the_right_check(environment, tmp_path):
    out = _pytest(environment, _repository(tmp_path, bug=True))
    assert out.returncode == 1, out.stdout[-4000:]
    assert "FAILED optconf::adam::float32::pipeline/basic" in out.stdout
    assert "velocity/" in out.stdout or "variables/" in out.stdout


def test_the_wheel_carries_every_module_of_the_tree(environment):
    """Every subpackage is listed in pyproject (a forgotten one would be missing from the wheel only)."""
    out = subprocess.run([str(environment), "-c", "import optimizer_conformance, pathlib; "
                          "root = pathlib.Path(list(optimizer_conformance.__path__)[0]); "
                          "print('\\n'.join(sorted(str(p.relative_to(root)) for p in root.rglob('*.py'))))"],
                         capture_output=True, text=True, timeout=60)
    installed = set(out.stdout.split())
    here = Path(__file__).resolve().parent.parent
    tree = {str(Path(folder) / p.relative_to(here / folder)) for folder in
            ("reference", "conformance", "fixtures", "fast_optimizers") for p in (here / folder).rglob("*.py")}
    assert tree - installed == set(), out.stderr

