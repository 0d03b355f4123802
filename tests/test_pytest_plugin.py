"""The pytest plugin, used as a port author would: in a throwaway repository outside this project."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import requires

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "numpy_adam_port"

PORT = '''
import numpy as np


class Adam:
    def __init__(self, learning_rate, beta_1, beta_2, epsilon):
        self.lr, self.b1, self.b2, self.eps, self.t = learning_rate, beta_1, beta_2, epsilon, 0

    def apply(self, grads, params):
        if self.t == 0:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        t = self.t + 1
        alpha = self.lr * np.sqrt(1 - self.b2**t) / (1 - self.b1**t)
        for p, g, m, v in zip(params, grads, self.m, self.v):
            if g is None:
                continue
            m += (g - m) * (1 - self.b1)
            v += (g * g - v) * (1 - self.b2)
            p -= (m * p.dtype.type(alpha)) / {denominator}
        self.t = t


class Adapter:
    algorithms = ("adam",)
    dtypes = ("float32",)

    def start(self, algorithm, config, variables, dtype, exclude):
        self.names = [n for n, _ in variables]
        self.params = [np.array(v, dtype=dtype) for _, v in variables]
        self.opt = Adam(config["learning_rate"], config["beta_1"], config["beta_2"], config["epsilon"])

    def apply(self, grads):
        self.opt.apply(grads, self.params)

    def state(self):
        state = {{"iterations": self.opt.t}}
        for n, p, m, v in zip(self.names, self.params, self.opt.m, self.opt.v):
            state.update({{f"variables/{{n}}": p, f"momentum/{{n}}": m, f"velocity/{{n}}": v}})
        return state
'''

CORRECT = "(np.sqrt(v) + p.dtype.type(self.eps))"
EPSILON_INSIDE_SQRT = "np.sqrt(v + p.dtype.type(self.eps))"

UNSUPPORTED = ["loss-scale", "accumulation", "accumulation-clipnorm", "accumulation-schedule", "accumulation-ema",
               "clipnorm", "global-clipnorm", "clipvalue", "weight-decay", "weight-decay-exclusion",
               "ema-overwrite-finalize", "schedule-exponential", "schedule-piecewise", "schedule-polynomial",
               "schedule-inverse-time", "schedule-cosine-warmup", "schedule-cosine-restarts", "amsgrad", "ema",
               "non-finite-gradients-clipnorm", "non-finite-gradients-global-clipnorm",
               "non-finite-gradients-clipvalue"]


def _repository(tmp_path: Path, denominator: str, extra_xfail: str = "") -> Path:
    repo = tmp_path / "myport-repo"
    (repo / "tests").mkdir(parents=True)
    (repo / "myport.py").write_text(PORT.format(denominator=denominator))
    (repo / "tests" / "test_nothing_else.py").write_text("def test_the_port_imports():\n    import myport\n")
    (repo / "xfail.txt").write_text("".join(f"adam/float32/pipeline/{f}: not ported\n" for f in UNSUPPORTED)
                                    + extra_xfail)
    (repo / "pyproject.toml").write_text(textwrap.dedent('''
        [tool.pytest.ini_options]
        optconf_candidate = "myport:Adapter"
        optconf_dtypes = "float32"
        optconf_profile = "quick"
        optconf_checks = "pipeline,one-step"
        optconf_xfail = "xfail.txt"
    '''))
    return repo


def _pytest(repo: Path, *args: str):
    env = dict(os.environ, PYTHONPATH=str(repo))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=repo,
                          capture_output=True, text=True, env=env, timeout=900)


def test_a_correct_port_passes_with_the_conformance_tests_in_its_own_suite(tmp_path):
    out = _pytest(_repository(tmp_path, CORRECT), "-rA")
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-2000:]
    assert "optconf: candidate myport:Adapter, profile quick" in out.stdout  # the header
    assert "PASSED optconf::adam::float32::pipeline/basic" in out.stdout
    assert "optconf conformance" in out.stdout and "adam: " in out.stdout  # the terminal summary
    # One count: the conformance summary counts the items as pytest does (the port's own test aside).
    import re

    mine = re.search(r"optconf: (\d+) conformance items: (\d+) passed, 0 failed, (\d+) expected failures .*, "
                     r"(\d+) not applicable \(skipped\)", out.stdout)
    final = out.stdout.strip().splitlines()[-1]
    assert mine, out.stdout[-3000:]
    assert f"{int(mine[2]) + 1} passed" in final and f"{mine[3]} xfailed" in final, (mine[0], final)
    assert (f"{mine[4]} skipped" in final) == (mine[4] != "0"), (mine[0], final)


def test_a_broken_port_fails_with_a_readable_report(tmp_path):
    out = _pytest(_repository(tmp_path, EPSILON_INSIDE_SQRT), "--optconf-json", str(tmp_path / "report.json"),
                  "--optconf-html", str(tmp_path / "report.html"))
    assert out.returncode == 1
    assert "FAIL adam pipeline/large-hyperparameters [float32]" in out.stdout
    for field in ("quantity", "candidate", "exact", "budget", "ratio"):
        assert f"  {field}" in out.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    # The same report as optconf check --json: the candidate's versions, and the one settings block.
    assert report["candidate"]["name"] == "myport:Adapter" and "python" in report["candidate"]["versions"]
    assert report["settings"]["interrupted"] is False and report["settings"]["profile"] == "quick"
    assert report["settings"]["algorithms"] == ["adam"] and report["settings"]["floatx"] == "float32"
    page = (tmp_path / "report.html").read_text(encoding="utf-8")  # the same report to look at as optconf --html
    assert 'class="fail" data-check="pipeline/large-hyperparameters"' in page and "data:image/png;base64," in page


def test_last_failed_and_failed_first_rerun_the_failing_conformance_items(tmp_path):
    """pytest's cache knows the conformance items by their node ids: --lf reruns only those that failed, --ff runs
    them first."""
    import re

    repo = _repository(tmp_path, EPSILON_INSIDE_SQRT)
    env = dict(os.environ, PYTHONPATH=str(repo))

    def run(*args: str):
        return subprocess.run([sys.executable, "-m", "pytest", "-rf", *args], cwd=repo, capture_output=True,
                              text=True, env=env, timeout=900)

    first = run()
    failed = sorted(re.findall(r"^FAILED (optconf::\S+)", first.stdout, re.M))
    assert first.returncode == 1 and failed, first.stdout[-3000:]
    last = run("--lf")
    assert last.returncode == 1 and f"run-last-failure: rerun previous {len(failed)} failure" in last.stdout
    assert sorted(re.findall(r"^FAILED (optconf::\S+)", last.stdout, re.M)) == failed
    assert f"{len(failed)} failed" in last.stdout.splitlines()[-1] and " passed" not in last.stdout.splitlines()[-1]
    first_failed = run("--ff", "-v")
    results = re.findall(r"^(optconf::\S+) (PASSED|FAILED|XFAIL|SKIPPED)", first_failed.stdout, re.M)
    assert {node for node, verdict in results[:len(failed)]} == set(failed), results[:len(failed) + 2]


def test_stale_expected_failures_warn_and_unexpected_passes_fail(tmp_path):
    repo = _repository(tmp_path, CORRECT, "adam/float32/pipeline/basic: pretend it fails\nadam/float64/x/y: stale\n")
    out = _pytest(repo)
    assert out.returncode == 1
    assert "XPASS(strict)" in out.stdout and "pipeline/basic" in out.stdout
    assert "stale entry 'adam/float64/x/y'" in out.stdout


def test_the_plugin_spreads_over_cores_with_xdist(tmp_path):
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    out = _pytest(_repository(tmp_path, CORRECT), "-n", "2")
    assert out.returncode == 0, out.stdout[-5000:]
    assert "optconf conformance" in out.stdout


@pytest.mark.parametrize(("option", "value", "accepted"), [
    ("profile", "forever", "quick, ci, deep"),
    ("checks", "pipelines", "pipeline, one-step, fixtures, explore, scale, api"),
    ("dtypes", "float8", "float64, float32, float16, bfloat16"),
    ("algorithms", "sgd", "adam, adamw, nadam, nadam-legacy, adamax, lamb, schedule-free-adamw"),
    ("backend", "mxnet", "tensorflow, jax, torch"),
    ("compile", "aot", "eager, function, jit"),
    ("dialect", "keras2", "keras3, tf-legacy"),
    ("timeout", "-1", "positive number of seconds"),
    ("timeout", "soon", "positive number of seconds"),
    ("strict", "yes", "true, false"),
    ("floatx", "float16", "float32, float64"),
    ("fixtures", "no/such/dir", "is not a directory"),
])
def test_a_bad_setting_is_one_line_naming_it_and_the_accepted_values(tmp_path, option, value, accepted):
    repo = _repository(tmp_path, CORRECT)
    for how in (["--optconf-" + option, value], ["-o", f"optconf_{option}={value}"]):
        out = _pytest(repo, *how)
        assert out.returncode == 4, out.stdout[-2000:] + out.stderr[-2000:]
        errors = [line for line in out.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and f"optconf_{option}" in errors[0] and accepted in errors[0], out.stderr
        assert repr(value) in errors[0]


@pytest.mark.keras
@requires("keras", "torch")
def test_a_known_upstream_bug_is_an_expected_failure_and_strict_fails_it(tmp_path):
    repo = tmp_path / "keras-repo"
    repo.mkdir()
    (repo / "pyproject.toml").write_text(textwrap.dedent('''
        [tool.pytest.ini_options]
        optconf_candidate = "keras"
        optconf_backend = "torch"
        optconf_algorithms = "adamax"
        optconf_dtypes = "float64"
        optconf_profile = "quick"
        optconf_checks = "pipeline"
    '''))
    selected = ("-k", "global-clipnorm and not non-finite and not dynamic", "-rA")
    out = _pytest(repo, *selected)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "XFAIL optconf::adamax::float64::pipeline/global-clipnorm" in out.stdout, out.stdout[-4000:]
    assert "known upstream bug [torch-float64-demotion]" in out.stdout
    strict = _pytest(repo, *selected, "-o", "optconf_strict=true")
    assert strict.returncode == 1 and "FAILED optconf::adamax::float64::pipeline/global-clipnorm" in strict.stdout


@pytest.mark.parametrize("kind", ["binary", "directory", "malformed"])
def test_an_unusable_xfail_file_is_a_usage_error_naming_the_file(tmp_path, kind):
    repo = _repository(tmp_path, CORRECT)
    (repo / "xfail.txt").unlink()
    if kind == "binary":
        (repo / "xfail.txt").write_bytes(b"adam/float32/pipeline/basic: ok\n\xff\xfe\x00\x01")
    elif kind == "directory":
        (repo / "xfail.txt").mkdir()
    else:
        (repo / "xfail.txt").write_text("# fine\nadam/float32/pipeline/basic: ok\nnot an entry\n")
    out = _pytest(repo)
    assert out.returncode == 4, out.stdout[-2000:] + out.stderr[-2000:]
    assert "INTERNALERROR" not in out.stdout + out.stderr
    assert "xfail.txt" in out.stderr
    if kind != "directory":
        assert "xfail.txt:2" in out.stderr or "xfail.txt:3" in out.stderr, out.stderr


def test_the_example_port_runs_its_tests_with_the_plugin():
    env = dict(os.environ, PYTHONPATH=str(EXAMPLE / "src"))
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"], cwd=EXAMPLE,
                         capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-2000:]
    assert "xfailed" in out.stdout


def test_a_partial_port_goes_from_red_to_green_with_one_command_and_a_reviewed_file(tmp_path):
    repo = _repository(tmp_path, CORRECT)
    (repo / "xfail.txt").unlink()  # the first run: no expected failures yet
    first = _pytest(repo)
    assert first.returncode == 4, first.stdout[-2000:] + first.stderr[-2000:]  # the named file does not exist
    update = _pytest(repo, "--optconf-xfail-update")
    written = (repo / "xfail.txt").read_text()
    assert "optconf: wrote" in update.stdout and "review it and commit it" in update.stdout, update.stdout[-2000:]
    assert "adam/float32/pipeline/weight-decay: failing since " in written
    assert "adam/float32/pipeline/basic" not in written  # what passes is not listed
    green = _pytest(repo)
    assert green.returncode == 0, green.stdout[-3000:]


def test_expected_failures_may_be_patterns_stale_only_when_nothing_they_match_fails(tmp_path):
    repo = _repository(tmp_path, CORRECT)
    (repo / "xfail.txt").write_text("adam/float32/pipeline/*: this port has the rule only\n"
                                    "adam/float32/one-step*: nor its one-step checks\n"
                                    "adam/float64/*: stale: no float64 check runs\n")
    out = _pytest(repo, "-rX")
    assert out.returncode == 0, out.stdout[-3000:]  # a passing check under a pattern is not a failure
    assert "stale entry 'adam/float64/*' matches no check" in out.stdout + out.stderr
    assert "XPASS" in out.stdout and "pipeline/basic" in out.stdout


def test_a_port_of_the_rule_alone_declares_what_it_lacks_and_is_green_without_an_xfail_file(tmp_path):
    repo = _repository(tmp_path, CORRECT)
    (repo / "xfail.txt").unlink()
    config = (repo / "pyproject.toml").read_text().replace('optconf_xfail = "xfail.txt"', 'optconf_lacks = "all"')
    (repo / "pyproject.toml").write_text(config)
    out = _pytest(repo, "-rs")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "the candidate declares it lacks use_ema: declared with optconf_lacks (--optconf-lacks)" in out.stdout
    assert "lacks learning_rate_schedule" in out.stdout and "0 failed" in out.stdout
    # A misspelt feature stops pytest, naming the setting and what it accepts.
    (repo / "pyproject.toml").write_text(config.replace('"all"', '"use_emma"'))
    bad = _pytest(repo)
    assert bad.returncode == 4 and "'use_emma' is not accepted; accepted: use_ema," in bad.stderr, (
        bad.stdout[-2000:] + bad.stderr[-2000:])


def test_conformance_items_follow_pytest_conventions_marker_and_junit_properties(tmp_path):
    import xml.etree.ElementTree as ElementTree

    repo = _repository(tmp_path, EPSILON_INSIDE_SQRT)
    out = _pytest(repo, "-m", "optconf", "--junitxml", str(tmp_path / "junit.xml"))
    assert out.returncode == 1, out.stdout[-3000:]
    assert "1 deselected" in out.stdout.strip().splitlines()[-1]  # the port's own test is not an optconf item
    cases = {(c.get("classname"), c.get("name")): c
             for c in ElementTree.parse(tmp_path / "junit.xml").getroot().iter("testcase")}
    basic = cases["optconf.adam.float32", "pipeline/basic"]
    properties = {p.get("name"): p.get("value") for p in basic.iter("property")}
    assert properties["optconf.verdict"] == "fail" and float(properties["optconf.ratio"]) > 1
    assert float(properties["optconf.budget"]) > 0 and properties["optconf.quantity"].startswith("variables/")
    assert properties["optconf.diagnosis"] == "epsilon-inside-sqrt"


README = Path(__file__).resolve().parent.parent / "README.md"

# A partial port of Adam and AdamW as README's ini names it (myport.conformance:Adapter): the rules alone, with
# AdamW's decoupled decay; no clipping, accumulation, EMA, schedules or loss scaling.
PARTIAL_PORT = '''
import numpy as np


class Adapter:
    algorithms = ("adam", "adamw")
    dtypes = ("float32",)

    def start(self, algorithm, config, variables, dtype, exclude):
        self.names = [n for n, _ in variables]
        self.params = [np.array(v, dtype=dtype) for _, v in variables]
        self.config, self.t = config, 0
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]

    def apply(self, grads):
        c, t = self.config, self.t + 1
        lr = float(c["learning_rate"])
        alpha = lr * np.sqrt(1 - c["beta_2"] ** t) / (1 - c["beta_1"] ** t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            if g is None:
                continue
            if c.get("weight_decay"):
                p -= p * p.dtype.type(lr * c["weight_decay"])
            m += (g - m) * p.dtype.type(1 - c["beta_1"])
            v += (g * g - v) * p.dtype.type(1 - c["beta_2"])
            p -= (m * p.dtype.type(alpha)) / (np.sqrt(v) + p.dtype.type(c["epsilon"]))
        self.t = t

    def state(self):
        state = {"iterations": self.t}
        for n, p, m, v in zip(self.names, self.params, self.m, self.v):
            state.update({f"variables/{n}": p, f"momentum/{n}": m, f"velocity/{n}": v})
        return state
'''


def _readme_plugin_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Validating your port: the pytest plugin")
    return text[start:text.index("\n## ", start + 1)]


def _fenced(section: str, language: str) -> list[str]:
    """The bodies of ``section``'s fenced blocks in ``language``."""
    import re

    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def test_the_readme_plugin_section_word_for_word_takes_a_partial_port_from_red_to_green(tmp_path):
    """README's plugin section, followed literally in a throwaway repository: its pyproject.toml block as written,
    a port at the module and class it names, then its commands in order; the documentation cannot drift from the
    behaviour without this test failing."""
    import re

    section = _readme_plugin_section()
    (toml,) = [block for block in _fenced(section, "toml") if "[tool.pytest.ini_options]" in block]
    (commands,) = [block for block in _fenced(section, "bash") if "--optconf-xfail-update" in block]
    commands = [line.split("#", 1)[0].strip() for line in commands.splitlines() if line.split("#", 1)[0].strip()]
    candidate = re.search(r'optconf_candidate = "([\w.]+):(\w+)"', toml)
    xfail = re.search(r'optconf_xfail = "([^"]+)"', toml)
    assert candidate and xfail, toml
    module, name = candidate[1], candidate[2]
    assert name == "Adapter" and commands[-1] == "pytest" and commands[0].startswith("pytest "), (name, commands)

    repo = tmp_path / "port-repo"
    package = repo / Path(*module.split(".")[:-1])
    package.mkdir(parents=True)
    for folder in [package, *package.relative_to(repo).parents][:-1]:
        (repo / folder / "__init__.py").touch()
    (repo / Path(*module.split("."))).with_suffix(".py").write_text(PARTIAL_PORT)
    (repo / "pyproject.toml").write_text(toml)
    (repo / "tests").mkdir()
    (repo / "tests" / "test_port.py").write_text(f"def test_the_port_imports():\n    import {module}\n")

    # Before the expected-failures file exists, pytest stops and names the command that writes it.
    before = _pytest(repo)
    assert before.returncode == 4 and "--optconf-xfail-update" in before.stderr, before.stderr[-2000:]
    runs = [_pytest(repo, *command.split()[1:]) for command in commands]
    update, green = runs[0], runs[-1]
    written = (repo / xfail[1]).read_text()
    assert "optconf: wrote" in update.stdout, update.stdout[-3000:] + update.stderr[-2000:]
    assert update.returncode == 1 and " failed" in update.stdout.splitlines()[-1]  # the red run that wrote it
    assert re.search(r"^adam/float32/pipeline/clipnorm: ", written, flags=re.M), written
    assert re.search(r"^adamw/float32/pipeline/ema: ", written, flags=re.M), written
    assert not re.search(r"pipeline/(basic|weight-decay):", written), written  # what the port has passes
    assert green.returncode == 0, green.stdout[-4000:] + green.stderr[-2000:]
    # The counts README shows: the plugin's line states pytest's numbers.
    mine = re.search(r"optconf: (\d+) conformance items: (\d+) passed, 0 failed, (\d+) expected failures \(0 known "
                     r"upstream bugs, (\d+) listed in optconf_xfail\), (\d+) not applicable \(skipped\)", green.stdout)
    assert mine and mine[3] == mine[4] != "0", green.stdout[-3000:]
    final = green.stdout.strip().splitlines()[-1]
    assert f"{int(mine[2]) + 1} passed" in final and f"{mine[3]} xfailed" in final, (mine[0], final)
