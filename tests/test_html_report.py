"""The report to look at: one self-contained HTML file, opened in a real headless browser."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import OPTCONF, requires

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FAIL_RGB = (214, 39, 40)  # conformance.report_html.FAIL


def _browser(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="needs a headless browser: Debian's chromium package (not installed)")
@requires("keras", "torch", "matplotlib")
def test_a_failing_run_draws_its_failures_and_every_image_loads_in_a_browser(tmp_path):
    page, report = tmp_path / "report.html", tmp_path / "report.json"
    out = subprocess.run([*OPTCONF, "check", "tests.mutants.catalogue:EpsilonInsideSqrt", "--backend", "torch",
                          "--algorithm", "adam", "--dtype", "float32", "--checks", "pipeline", "--profile", "quick",
                          "--quiet", "--html", str(page), "--json", str(report)],
                         capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and 'src="data:image/png;base64,' in text
    failing = [c for c in json.loads(report.read_text())["checks"] if c["verdict"] == "fail"]
    assert failing and all(c["trace"]["ratios"] for c in failing)

    dom = _browser("--virtual-time-budget=10000", "--dump-dom", page.as_uri()).stdout
    loaded = dom.split('data-images="', 1)[1].split('"', 1)[0]
    shown, total = map(int, loaded.split("/"))
    assert shown == total >= len(failing), loaded  # every failing check drawn, every image loaded
    assert 'class="fail" data-check="pipeline/large-hyperparameters" data-dtype="float32"' in dom

    shot = tmp_path / "shot.png"
    _browser("--window-size=1280,1200", f"--screenshot={shot}", page.as_uri())
    from matplotlib import image

    pixels = (image.imread(shot)[..., :3] * 255).round().astype(int)
    red = ((abs(pixels - FAIL_RGB).sum(axis=-1)) <= 6).sum()
    assert red > 500, f"the heat map's failing cells are not on the screenshot ({red} red pixels)"
