"""The report: built from a run folder alone, self-contained, and rendered by a real browser."""

import re
import shutil
import subprocess

import pytest

from medclass.errors import RunFolderError
from medclass.reports import SECTIONS, build_report
from medclass.runs import evaluate_run, train
from tests.conftest import fast_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory):
    from tests.conftest import make_npz

    tmp = tmp_path_factory.mktemp("report")
    folder = train(fast_config(make_npz(tmp / "toy.npz"), epochs=3), tmp / "run")
    evaluate_run(folder.path, "test")
    return folder


def test_report_has_every_section_and_is_self_contained(scored_run):
    path = build_report(scored_run.path)
    doc = path.read_text()
    for sid in SECTIONS:
        assert f"id='{sid}'" in doc, sid
    imgs = re.findall(r"<img [^>]*src=\"([^\"]+)\"", doc)
    assert len(imgs) >= 4 and all(src.startswith("data:image/png;base64,") for src in imgs)
    assert "http://" not in doc.replace("http://www.apache.org", "") and "<script" not in doc
    assert "95% interval" in doc and "chosen on the validation split" in doc


def test_report_needs_a_scored_split(toy_npz, tmp_path):
    folder = train(fast_config(toy_npz, epochs=1), tmp_path / "r")
    with pytest.raises(RunFolderError, match="no metrics for the test split yet. Score it first: medclass evaluate"):
        build_report(folder.path)
    assert build_report(folder.path, split="val").is_file()  # validation metrics exist after training


@pytest.mark.skipif(CHROMIUM is None, reason="Requires: chromium (Debian package 'chromium'); .ci/run installs it")
def test_report_renders_in_headless_chromium(scored_run, tmp_path):
    path = build_report(scored_run.path)
    base = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120).stdout
    for heading in ("Data card", "Training curves", "Metrics (test)", "ROC and precision-recall curves",
                    "Confusion matrices", "Operating points (chosen on validation)", "Calibration", "Subgroups",
                    "Configuration", "Environment"):
        assert f"<h2>{heading}</h2>" in dom, heading
    shot = tmp_path / "report.png"
    subprocess.run([*base, "--window-size=1200,3000", f"--screenshot={shot}", path.as_uri()], capture_output=True,
                   timeout=120)
    from PIL import Image

    im = Image.open(shot).convert("L")
    assert im.size == (1200, 3000)
    lo, hi = im.getextrema()
    assert hi - lo > 100  # something was drawn: text and figures, not a blank page
