"""The report: built from a run folder alone, self-contained, escaped, and rendered by a real browser."""

import csv
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from medclass.config import config_from_dict
from medclass.errors import RunFolderError
from medclass.reports import SECTIONS, build_report
from medclass.reports._render import _environment
from medclass.runs import evaluate_run, train
from medclass.runs.report import write_report
from tests.conftest import fast_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOSTILE_CLASS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory):
    from tests.conftest import make_npz

    tmp = tmp_path_factory.mktemp("report")
    folder = train(fast_config(make_npz(tmp / "toy.npz"), epochs=3), tmp / "run")
    evaluate_run(folder.path, "test")
    return folder


@pytest.fixture
def run_copy(scored_run, tmp_path):
    """A copy of the scored run whose files a test may change."""
    return shutil.copytree(scored_run.path, tmp_path / "run")


def test_report_has_every_section_and_is_self_contained(scored_run):
    path = write_report(scored_run.path)
    doc = path.read_text()
    for sid in SECTIONS:
        assert re.search(f"id=[\"']{sid}[\"']", doc), sid
    imgs = re.findall(r"<img [^>]*src=\"([^\"]+)\"", doc)
    assert len(imgs) >= 4 and all(src.startswith("data:image/png;base64,") for src in imgs)
    assert "http://" not in doc.replace("http://www.apache.org", "") and "<script" not in doc
    assert "95% interval" in doc and "chosen on the validation split" in doc


def test_report_needs_a_scored_split(toy_npz, tmp_path):
    folder = train(fast_config(toy_npz, epochs=1), tmp_path / "r")
    with pytest.raises(RunFolderError, match="no metrics for the test split yet. Score it first: medclass evaluate"):
        build_report(folder.path)
    assert build_report(folder.path, split="val").is_file()  # validation metrics exist after training


def test_templates_autoescape():
    env = _environment()
    assert env.autoescape is True
    assert "&lt;b&gt;" in env.from_string("{{ x }}").render(x="<b>")


def test_intended_use_sits_beside_the_headline_numbers(scored_run):
    doc = build_report(scored_run.path).read_text()
    summary = doc[doc.index('id="summary"'):doc.index('id="data-card"')]
    assert 'id="intended-use"' in summary and "Research and education only." in summary
    assert "16 × 16 pixels" in summary and "greyscale (1 channel)" in summary  # the toy images are 16 px
    assert "64 train, 32 val, 32 test images" in summary and "Licence:" in summary
    assert "In words</b>, at the default threshold" in summary


def test_every_term_is_explained_where_it_appears(scored_run):
    doc = build_report(scored_run.path).read_text()
    metrics = doc[doc.index('id="metrics"'):doc.index('id="curves"')]
    for sentence in ("does not depend on any threshold", "the share the model calls", "The harmonic mean",
                     "Undefined replicates: resamples in which", "mean squared difference"):
        assert sentence in metrics, sentence
    assert "percentile bootstrap" in doc[doc.index('id="summary"'):doc.index('id="data-card"')]
    ops = doc[doc.index('id="operating-points"'):doc.index('id="calibration"')]
    assert "Youden&#39;s index: the threshold that maximises" in ops and "as a screening or rule-out test" in ops
    cal = doc[doc.index('id="calibration"'):doc.index('id="subgroups"')]
    assert "Expected calibration error (ECE): the average gap" in cal and "Brier score" in cal


def test_coinciding_and_very_low_thresholds_are_said_once(run_copy):
    mpath = run_copy / "metrics" / "test.json"
    m = json.loads(mpath.read_text())
    ops = {o["name"]: o for o in m["operating_points"]}
    ops["high_specificity"]["threshold"] = ops["youden"]["threshold"]
    ops["high_sensitivity"]["threshold"] = 0.02
    mpath.write_text(json.dumps(m))
    doc = build_report(run_copy).read_text()
    ops_html = doc[doc.index('id="operating-points"'):doc.index('id="calibration"')]
    assert ops_html.count("<tr>") == 1 + 3  # header + default, Youden = high specificity, high sensitivity
    assert "Youden&#39;s index = high specificity (confirmation)" in ops_html
    assert "chose the same threshold" in ops_html and "so they are shown as one row" in ops_html
    assert "A threshold of 0.02 means every image given a" in ops_html and "probability of 2% or more" in ops_html
    assert "On a screening (high-sensitivity) point this is expected" in ops_html


def test_warnings_about_a_degenerate_split_sit_beside_the_headline_numbers(scored_run, run_copy):
    assert "Read these numbers with caution" not in build_report(scored_run.path).read_text()  # 32 test images
    mpath = run_copy / "metrics" / "test.json"
    m = json.loads(mpath.read_text())
    m["warnings"] = [{"code": "small-split", "message": "Only 2 images in this split: every number here ..."}]
    m["intervals"]["auc"].update(n_undefined=967, undefined_share=0.4835)
    mpath.write_text(json.dumps(m))
    doc = build_report(run_copy).read_text()
    summary = doc[doc.index('id="summary"'):doc.index('id="data-card"')]
    assert "Read these numbers with caution" in summary and "Only 2 images in this split" in summary
    assert "a handful of other images could give quite different values" in summary
    metrics = doc[doc.index('id="metrics"'):doc.index('id="curves"')]
    assert '<td class="num">967 (48%)</td>' in metrics


def test_calibration_uses_equal_count_bins_with_their_counts(scored_run):
    doc = build_report(scored_run.path).read_text()
    cal = doc[doc.index('id="calibration"'):doc.index('id="subgroups"')]
    assert "equal-count bins drawn" in cal and "over ten equal-width bins" in cal
    counts = [int(n) for n in re.findall(r'<td class="num">(\d+)</td>\s*<td class="num">[\d.]+%</td>', cal)]
    assert sum(counts) == 32 and max(counts) - min(counts) <= 1  # every test image, bins of equal size


def test_calibration_falls_back_to_stored_bins_without_predictions(run_copy):
    (run_copy / "predictions" / "test.csv").unlink()
    doc = build_report(run_copy).read_text()
    cal = doc[doc.index('id="calibration"'):doc.index('id="subgroups"')]
    assert "equal-width bins drawn" in cal and "drawn hollow and not joined by a line" in cal
    assert "no saved predictions" in doc  # and the gallery says why it has nothing to show


def test_raw_configuration_is_collapsed_at_the_end(scored_run):
    doc = build_report(scored_run.path).read_text()
    tail = doc[doc.index('id="configuration"'):]
    assert tail.count("<details>") == 2 and "<summary>config.yaml" in tail and "<summary>environment.json" in tail
    assert "<details>" not in doc[:doc.index('id="configuration"')]


def test_gallery_is_built_by_the_report_and_reused(run_copy):
    shutil.rmtree(run_copy / "explain", ignore_errors=True)  # as after `medclass evaluate`, before any explain
    doc = build_report(run_copy).read_text()
    assert f"medclass explain {run_copy} --gallery --split test" in doc and "No heatmaps" in doc
    doc = write_report(run_copy).read_text()
    gallery = run_copy / "explain" / "gallery.json"
    assert gallery.is_file() and (run_copy / "explain" / "gallery.html").is_file()
    assert "true positives" in doc and "true negatives" in doc and "No heatmaps" not in doc
    built = gallery.stat().st_mtime_ns
    write_report(run_copy)
    assert gallery.stat().st_mtime_ns == built  # fresh: reused, not rebuilt
    g = json.loads(gallery.read_text())
    for group in g["groups"]:  # images predicted negative also get the map toward their predicted class
        for item in group["items"]:
            assert len(item["maps"]) == (2 if group["title"] in ("false negatives", "true negatives") else 1)
    preds = run_copy / "predictions" / "test.csv"
    preds.touch()
    write_report(run_copy)
    assert gallery.stat().st_mtime_ns > built  # predictions newer than the gallery: rebuilt


def test_gallery_says_which_command_when_it_cannot_be_built(run_copy):
    shutil.rmtree(run_copy / "explain", ignore_errors=True)
    cfg = run_copy / "config.yaml"
    cfg.write_text(re.sub(r"dataset: .*", "dataset: /nowhere/gone.npz", cfg.read_text()))
    doc = write_report(run_copy).read_text()
    assert "The heatmap gallery could not be built" in doc and "/nowhere/gone.npz" in doc
    assert f"medclass explain {run_copy} --gallery --split test --data-dir DIR" in doc


@pytest.mark.parametrize("kind", ["multiclass", "multilabel"])
def test_other_tasks_render(kind, tmp_path):
    from tests.conftest import make_npz

    npz = make_npz(tmp_path / "toy.npz", classes=4, multilabel=kind == "multilabel")
    run = train(fast_config(npz, epochs=1), tmp_path / "run")
    evaluate_run(run.path, "test")
    doc = write_report(run.path).read_text()
    assert "Operating points are chosen for binary tasks." in doc and "Calibration is shown for binary tasks." in doc
    assert "averaged over the classes" in doc or "averaged over the labels" in doc
    if kind == "multiclass":
        assert "most confident correct" in doc and (run.path / "explain" / "gallery.json").is_file()
    else:
        assert "The heatmap gallery covers single-label tasks" in doc


def _hostile_manifest(root):
    """48 PNGs of 24 patients: one class named like a script, a 'site' column with an HTML value."""
    rng = np.random.default_rng(0)
    rows = []
    for p in range(24):
        label = p % 2
        for k in range(2):
            img = rng.integers(0, 90, (28, 28)).astype(np.uint8)
            if label:
                img[8:18, 8:18] = 230
            Image.fromarray(img).save(root / f"p{p}_{k}.png")
            rows.append({"path": f"p{p}_{k}.png", "label": [HOSTILE_CLASS, "normal, benign"][label],
                         "patient_id": f"P{p}", "site": ["<b>", "A"][p % 3 == 0]})
    with open(root / "m.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root / "m.csv"


def test_hostile_class_names_and_metadata_are_escaped(tmp_path):
    cfg = config_from_dict({"data": {"manifest": str(_hostile_manifest(tmp_path)), "size": 28},
                            "model": {"name": "resnet9", "width": 4}, "train": {"epochs": 2, "batch_size": 16},
                            "eval": {"batch_size": 64, "n_boot": 100}})
    run = train(cfg, tmp_path / "run")
    evaluate_run(run.path, "test")
    doc = write_report(run.path).read_text()
    assert "<script" not in doc and "alert(1)</script>" not in doc
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in doc  # shown, as text
    assert "<td>&lt;b&gt;</td>" in doc  # the subgroup value, as text
    assert "benign or normal (stored as “normal, benign”)" in doc  # the merged class, as it reads
    page = (run.path / "explain" / "gallery.html").read_text()
    assert "<script" not in page


@pytest.mark.skipif(CHROMIUM is None, reason="Requires: chromium (Debian package 'chromium'); .ci/run installs it")
def test_report_renders_in_headless_chromium(scored_run, tmp_path):
    path = write_report(scored_run.path)
    base = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120).stdout
    for heading in ("Intended use", "Data card", "Training curves", "Metrics (test)", "ROC and precision-recall curves",
                    "Confusion matrices", "Operating points (chosen on validation)", "Calibration", "Subgroups",
                    "Where the model looks (heatmap gallery)", "Configuration", "Environment"):
        assert f"<h2>{heading}</h2>" in dom, heading
    shot = tmp_path / "report.png"
    subprocess.run([*base, "--window-size=1200,3000", f"--screenshot={shot}", path.as_uri()], capture_output=True,
                   timeout=120)
    from PIL import Image

    im = Image.open(shot).convert("L")
    assert im.size == (1200, 3000)
    lo, hi = im.getextrema()
    assert hi - lo > 100  # something was drawn: text and figures, not a blank page
