"""`wafersage demo` runs from any folder (the demo config ships in the package; configs/synth/demo.yaml links to
it, one source), and its specialist learns from the benchmark's train split only."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

import wafersage
from wafersage.cli import main
from wafersage.demo import DEMO_CONFIG
from wafersage.tasks.bench.folder import Benchmark
from wafersage.tasks.classify.classifier import classifier_for_benchmark
from wafersage.tasks.synth.build import SynthConfig

REPO = Path(__file__).resolve().parents[1]


def test_one_demo_config_in_the_package():
    assert DEMO_CONFIG.is_file() and DEMO_CONFIG.resolve().is_relative_to(Path(wafersage.__file__).parent)
    assert (REPO / "configs" / "synth" / "demo.yaml").resolve() == DEMO_CONFIG.resolve()
    config = SynthConfig.from_yaml(DEMO_CONFIG)
    assert config.source.n >= 150 and config.splits.train >= 0.6 and config.splits.test > 0


def test_demo_outside_the_repository_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WAFERSAGE_MODELS_DIR", str(tmp_path / "no-models"))
    result = CliRunner().invoke(main, ["demo", "--baselines-only", "--limit", "8"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    bench = Benchmark.load(tmp_path / "demo_out" / "bench")
    assert bench.manifest["config"] == SynthConfig.from_yaml(DEMO_CONFIG).model_dump(mode="json")
    assert (tmp_path / "leaderboard.html").stat().st_size > 0
    n_train = sum(1 for w in bench.wafers("train") if w.labels)
    assert n_train >= 100
    # the classifier the demo's specialist used (memoised in this process): the train split, nothing generated
    assert classifier_for_benchmark(bench.root).trained_on == {"benchmark_train": n_train, "generated": 0}
    missing = CliRunner().invoke(main, ["demo", "--config", "nowhere.yaml"])
    assert missing.exit_code == 2 and "nowhere.yaml does not exist" in missing.output
