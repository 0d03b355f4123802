"""Every run ends with a verdict, the table and the JSON, whatever the candidate does; no verdict is vacuous.

Each candidate of ``tests/candidates/misbehaving.py`` is checked by ``optconf check`` as a user would run it.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from optimizer_conformance.conformance.report import schema

from tests.candidates.misbehaving import MISBEHAVING
from tests.conftest import OPTCONF, requires

pytestmark = requires("numba")

FAST_CHECKS = ["--algorithm", "adam", "--dtype", "float32", "--profile", "quick",
               "--checks", "pipeline,one-step,explore"]


def _optconf(*args, timeout=600, **kwargs):
    return subprocess.run([*OPTCONF, *args], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


@pytest.mark.parametrize("candidate", MISBEHAVING, ids=lambda c: c.__name__)
def test_a_misbehaving_candidate_gets_a_verdict_a_table_and_a_json_report(candidate, tmp_path):
    report = tmp_path / "report.json"
    out = _optconf("check", f"tests.candidates.misbehaving:{candidate.__name__}", *FAST_CHECKS, "--timeout", "4",
                   "--json", str(report))
    text = out.stdout + out.stderr
    assert out.returncode == (0 if candidate.expected == "pass" else 1), text[-4000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert "\nadam: " in out.stdout and "not applicable in" in out.stdout, out.stdout[-2000:]
    document = json.loads(report.read_text())
    jsonschema.validate(document, schema())  # the one report format, whatever happened
    assert document["conformant"] is (candidate.expected == "pass")
    if candidate.expected == "fail":
        assert candidate.message in out.stdout, out.stdout[-4000:]
        assert document["summary"]["failed"] > 0
        assert not any(c["verdict"] == "pass" for c in document["checks"] if c["check"] == "pipeline/basic")


@pytest.mark.parametrize("candidate", ["Honest", "Segfault", "Raises"])
def test_two_workers_give_the_verdicts_of_one_in_the_same_order(candidate, tmp_path):
    """--jobs 2 runs two units at once (a worker each, restarted in its thread after a crash): the report is the
    one worker's, check for check; only 'lost 3 requests in a row' is counted per worker."""
    documents = []
    for jobs in (1, 2):
        report = tmp_path / f"report-{jobs}.json"
        out = _optconf("check", f"tests.candidates.misbehaving:{candidate}", "--algorithm", "adam", "--dtype",
                       "float32,float64", "--profile", "quick", "--checks", "pipeline,one-step,explore,fixtures",
                       "--timeout", "4", "--jobs", str(jobs), "--json", str(report))
        assert "Traceback" not in out.stderr, out.stderr[-3000:]
        documents.append(json.loads(report.read_text()))
    one, two = ([(c["check"], c["dtype"], c["verdict"], bool(c["error"])) for c in d["checks"]] for d in documents)
    assert one == two and len(one) > 20
    assert [d["timing"]["workers"] for d in documents] == [1, 2]
    if candidate == "Segfault":
        assert all("SIGSEGV" in c["error"] for c in documents[1]["checks"] if c["error"])


def test_a_candidate_that_computes_nothing_fails_every_check(tmp_path):
    report = tmp_path / "report.json"
    out = _optconf("check", "tests.candidates.misbehaving:OnlyIterations", *FAST_CHECKS, "--json", str(report))
    assert out.returncode == 1
    document = json.loads(report.read_text())
    assert document["checks"] and not any(c["verdict"] == "pass" for c in document["checks"])
    assert "0 passed" in out.stdout


def test_a_crash_at_import_is_a_usage_error_naming_the_signal(tmp_path):
    (tmp_path / "crashing_port.py").write_text("import ctypes\nctypes.string_at(0)\n")
    out = _optconf("check", "crashing_port:Adam", "--algorithm", "adam", cwd=tmp_path,
                   env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    assert out.returncode == 2, out.stdout + out.stderr
    assert "SIGSEGV" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads the process table from /proc")
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_double_ctrl_c_while_the_candidate_hangs_reports_and_leaves_no_worker(jobs, tmp_path):
    report = tmp_path / "report.json"
    process = subprocess.Popen(
        [*OPTCONF, "check", "tests.candidates.misbehaving:HangInApply", "--algorithm", "adam",
         "--dtype", "float32,float64", "--profile", "quick", "--checks", "pipeline,one-step,explore",
         "--jobs", str(jobs), "--timeout", "100", "--json", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    workers = []
    while time.monotonic() < deadline and len(workers) < jobs:
        time.sleep(0.5)
        workers = _children(process.pid)
    assert len(workers) == jobs, f"{len(workers)} workers were started, not {jobs}"
    time.sleep(4)  # the worker is now hanging in apply()
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the foreground process group
    time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr, stderr
    assert "interrupted" in stderr and "not applicable in" in stdout
    assert json.loads(report.read_text())["settings"]["interrupted"] is True
    time.sleep(0.5)
    assert not [w for w in workers if _alive(w)], "a worker outlived optconf"


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads the process table from /proc")
def test_a_worker_dies_with_a_killed_harness(tmp_path):
    process = subprocess.Popen(
        [*OPTCONF, "check", "tests.candidates.misbehaving:HangInApply", *FAST_CHECKS,
         "--timeout", "100"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    workers = []
    while time.monotonic() < deadline and not workers:
        time.sleep(0.5)
        workers = _children(process.pid)
    time.sleep(3)
    process.kill()
    process.wait()
    time.sleep(2)
    assert workers and not [w for w in workers if _alive(w)], "a worker outlived a killed optconf"


def test_the_printed_example_is_the_whole_case_zeros_and_false_included():
    from optimizer_conformance.conformance.model import describe_spec, make_spec

    spec = make_spec("adam", {"learning_rate": 0.1, "beta_1": 0.0, "amsgrad": False, "epsilon": 1e-7}, "float32",
                     [("v0", np.zeros(2))], [[np.ones(2)]])
    text = describe_spec(spec)
    assert "'beta_1': 0.0" in text and "'amsgrad': False" in text


def test_explore_replays_its_saved_failures_first_and_forgets_them_once_they_pass(tmp_path):
    """Each shrunk failure is saved in the explore database and replayed first on the next run (the search goes on
    after it: both of TwoBugs' bugs are found again); a saved failure the candidate now passes is removed."""
    database = tmp_path / "db"
    args = ["--algorithm", "adam", "--dtype", "float32", "--profile", "quick", "--checks", "explore",
            "--explore-database", str(database)]
    first = _optconf("check", "tests.candidates.misbehaving:TwoBugs", *args)
    saved = sorted(database.rglob("*.json"))
    assert first.returncode == 1 and len(saved) == 2, first.stdout[-2000:]
    assert saved[0].parent.relative_to(database).parts[1:] == ("adam", "float32")
    again = _optconf("check", "tests.candidates.misbehaving:TwoBugs", *args)
    assert again.returncode == 1 and "also found:" in again.stdout
    assert sorted(database.rglob("*.json")) == saved
    honest = database / "tests.candidates.misbehaving-Honest-tensorflow" / "adam" / "float32"
    honest.mkdir(parents=True)
    for path in saved:  # the honest port passes what TwoBugs failed: forgotten
        (honest / path.name).write_text(path.read_text())
    assert _optconf("check", "tests.candidates.misbehaving:Honest", *args).returncode == 0
    assert not list(honest.glob("*.json"))
