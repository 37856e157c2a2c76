"""The report's robustness section: the command that fills it until ``evaluate --corruptions`` ran, then a table and a
figure from ``metrics/corruptions-test.json``, escaped like the rest of the page."""

import json
import re

import pytest

from medclass.reports import SECTIONS, build_report
from medclass.runs import evaluate_run, train
from medclass.runs.robustness import evaluate_corruptions
from tests.conftest import fast_config, make_npz


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report-robust")
    folder = train(fast_config(make_npz(tmp / "toy.npz"), epochs=2), tmp / "run")
    evaluate_run(folder.path, "test")
    return folder


def _section(doc: str) -> str:
    return doc[doc.index('id="robustness"'):doc.index('id="interpretation"')]


def test_section_says_how_to_fill_it_then_shows_table_and_figure(scored_run):
    assert "robustness" in SECTIONS
    before = _section(build_report(scored_run.path).read_text())
    assert "Not scored under corruption yet" in before and "--corruptions --split test" in before
    r = evaluate_corruptions(scored_run.path, severities=(1, 3, 5), corruptions=("gaussian_noise", "brightness_down"),
                             n_boot=200)
    doc = build_report(scored_run.path).read_text()
    sec = _section(doc)
    assert "Robustness under corruption" in sec and "Not scored" not in sec
    assert re.search(r'<img alt="AUC and accuracy against corruption severity" src="data:image/png;base64,', sec)
    assert sec.count("<th>severity ") == 2 * 3  # the metric table and the default-threshold table
    assert "gaussian_noise" in sec and "brightness_down" in sec and "mean over corruptions" in sec
    assert f"{r['clean']['auc']:.3f} / {r['clean']['acc']:.3f}" in sec
    assert "Sensitivity / specificity at the default threshold" in sec and r["size_note"] in sec


def test_section_is_escaped_and_flags_a_stale_result(scored_run, tmp_path):
    path = scored_run.metrics("corruptions-test")
    if not path.is_file():
        evaluate_corruptions(scored_run.path, severities=(2,), corruptions=("pixelate",), n_boot=0)
    r = json.loads(path.read_text())
    r["corruption_set"]["chosen_by"] = "<script>alert(1)</script>"
    r["checkpoint"]["epoch"] = 999
    path.write_text(json.dumps(r))
    sec = _section(build_report(scored_run.path, out=tmp_path / "r.html").read_text())
    assert "<script>" not in sec and "&lt;script&gt;alert(1)&lt;/script&gt;" in sec
    assert "checkpoint of epoch 999, not the one scored above" in sec
