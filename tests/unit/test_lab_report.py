"""The gradient-flow lab's report tables, from a hand-made results dict."""

import math
import types

from toolkit.lab import report as lab_report


def run(cell, clipnorm, test, baseline=0.1667, **extra):
    values = {
        "cell": cell,
        "units": 32 if cell == "lstm" else 64,
        "forget_bias": 1.0,
        "clipnorm": clipnorm,
        "timesteps": 50,
        "parameters": 4353,
        "test_mse": test,
        "baseline_mse": baseline,
        "beats_baseline": test < baseline / 2,
        "clipped_fraction": 0.25,
    }
    return {**values, **extra}


def test_labels_and_scores_name_the_model_and_flag_divergence():
    assert (
        lab_report.label(run("lstm", 1.0, 0.01))
        == "LSTM, forget bias 1 (32 units), clipnorm 1"
    )
    assert (
        lab_report.label(run("vanilla", None, 0.2))
        == "vanilla RNN (64 units), no clipping"
    )
    assert (
        lab_report.score(run("lstm", 1.0, 0.01)) == "0.0100 (baseline 0.1667)"
    )
    assert lab_report.format_value(math.nan) == "diverged"
    copy = {"test_cross_entropy": 0.5, "baseline_cross_entropy": 1.0}
    assert lab_report.test_value(copy) == 0.5
    assert lab_report.baseline_value(copy) == 1.0


def test_report_has_every_section_and_row():
    config = types.SimpleNamespace(
        scaling_timesteps=200,
        clip_singular_value=3.0,
        clip_learning_rate=0.05,
        clip_steps=300,
        clip_timesteps=50,
        clipnorm=1.0,
    )
    copy_run = run("lstm", 1.0, 0.0)
    copy_run.pop("test_mse"), copy_run.pop("baseline_mse")
    copy_run.update(test_cross_entropy=0.05, baseline_cross_entropy=0.2)
    results = {
        "scaling": {
            "vanilla: dL/dh_t": {
                "first": 1e-9,
                "last": 1.0,
                "first_over_last": 1e-9,
            }
        },
        "adding": [run("lstm", 1.0, 0.01), run("vanilla", 1.0, 0.17)],
        "copy": [copy_run],
        "clipping": [
            {"clipnorm": None, "diverged": True, "clipped_fraction": 0.0},
            {"clipnorm": 1.0, "diverged": False, "clipped_fraction": 0.5},
        ],
        "seconds": 12.3,
    }
    text = lab_report.report(config, results)
    assert "## Gradient norms at initialisation (T = 200)" in text
    assert "| vanilla: dL/dh_t | 1e-09 | 1 | 1e-09 |" in text
    assert (
        "| 50 | LSTM, forget bias 1 (32 units), clipnorm 1 | 4,353 | "
        "0.0100 | 0.1667 | 0.06 | yes | 25% |"
    ) in text
    assert "| 50 | vanilla RNN (64 units), clipnorm 1 | 4,353 | 0.1700" in text
    assert "| none | 1 | 1 | 0% |" in text
    assert "| clipnorm 1 | 1 | 0 | 50% |" in text
    assert text.rstrip().endswith("Total 12 s.")
