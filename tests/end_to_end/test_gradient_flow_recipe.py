"""The gradient-flow recipe end to end on a tiny configuration."""

import json
import math
import pathlib

from recipes import gradient_flow

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_tiny_lab_writes_its_report(tmp_path):
    args = [
        f"--run-dir={tmp_path / 'lab'}",
        "--scaling-timesteps=12",
        "--scaling-units=8",
        "--adding-timesteps=10",
        "--adding-steps=5",
        "--copy-timesteps=3",
        "--copy-steps=4",
        "--lstm-units=4",
        "--vanilla-units=8",
        "--clip-seeds=1",
        "--clip-steps=40",
        "--clip-timesteps=20",
        "--unclipped-variants",
    ]
    assert gradient_flow.main(args) == 0
    lab = tmp_path / "lab"
    for name in (
        "report.md",
        "results.json",
        "gradient_norms.png",
        "adding_T10.png",
        "adding_T10_gradients.png",
        "copy_T3.png",
        "copy_T3_gradients.png",
        "clipping.png",
        "clipping_gradients.png",
        "gradient_flow_logs/copy_T3_lstm_fb0_noclip.csv",
        "config.json",
    ):
        assert (lab / name).exists(), name
    results = json.loads((lab / "results.json").read_text())
    # Three models, clipped and unclipped.
    assert len(results["adding"]) == 6
    assert {r["clipnorm"] for r in results["adding"]} == {None, 1.0}
    assert len(results["copy"]) == 6
    for run in results["copy"]:
        assert run["baseline_cross_entropy"] == 10 * math.log(8) / 23
        # Four steps from random weights: near ln(10) per step, unsolved.
        assert abs(run["test_cross_entropy"] - math.log(10)) < 0.5
        assert run["beats_baseline"] is False
    scaling = results["scaling"]
    small = scaling["vanilla, sigma_max(W_h) = 0.5"]["first_over_last"]
    large = scaling["vanilla, sigma_max(W_h) = 1.5"]["first_over_last"]
    assert small < 1 < large
    assert "LSTM, forget bias 1: dL/dc_t" in scaling
    clipping = {r["clipnorm"]: r for r in results["clipping"]}
    assert clipping[None]["clipped_fraction"] == 0
    assert clipping[1.0]["diverged"] is False
    report = (lab / "report.md").read_text()
    assert "| 10 | vanilla RNN (8 units), no clipping |" in report
    assert "## Copy memory" in report
    assert "| 3 | LSTM, forget bias 0 (4 units), clipnorm 1 |" in report


def test_help_and_bad_options(run_side_by_side):
    script = str(ROOT / "recipes" / "gradient_flow.py")
    results = run_side_by_side(
        {"help": [script, "--help"], "bad": [script, "--clipnorm=0"]}
    )
    result = results["help"]
    assert result.returncode == 0 and "--adding-timesteps" in result.stdout
    result = results["bad"]
    assert result.returncode == 2 and "clipnorm" in result.stderr
