"""One process per run folder (an OS lock, released when its holder dies), a resume refused when anything that
shapes a request changed (named), and missing or extra samples found by key, not by counts."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from bench_factory import make_bench
from click.testing import CliRunner

from wafersage.cli import main
from wafersage.harness.run import messages
from wafersage.harness.run.fingerprint import changed_parts, request_fingerprint
from wafersage.harness.run.folder import LOCK, SAMPLES, RunFolderBusy, folder_lock, read_samples
from wafersage.harness.run.records import RunInfo
from wafersage.harness.run.runner import EvalUsageError, run_eval
from wafersage.harness.scoring.score_run import IncompleteRunWarning, score_run
from wafersage.models.base import GenerationParams
from wafersage.models.config import ModelConfig
from wafersage.reports.results import load_result
from wafersage.tasks.bench.folder import Benchmark

HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from wafersage.harness.run.folder import folder_lock
    with folder_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(120)
""")


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    return make_bench(tmp_path_factory.mktemp("bench"))


@pytest.fixture
def holder(tmp_path):
    """A real process that holds the lock of ``tmp_path/run`` until it is killed."""
    folder = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder)], stdout=subprocess.PIPE, text=True,
                               cwd=os.getcwd())
    try:
        assert process.stdout.readline().strip() == "locked"
        yield folder, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_a_second_process_is_refused_with_the_holders_pid_and_a_dead_holder_frees_the_folder(bench_dir, holder):
    folder, process = holder
    with pytest.raises(RunFolderBusy, match=rf"PID {process.pid} on .*wait for it to finish, or stop it"):
        run_eval(bench_dir, "oracle", out_dir=folder, progress=False)
    result = CliRunner().invoke(main, ["eval", "--bench", str(bench_dir), "--model", "oracle", "--out", str(folder)])
    assert result.exit_code == 2 and f"PID {process.pid}" in result.output and "--out" in result.output
    assert not (folder / SAMPLES).exists()  # the refused process wrote nothing
    os.kill(process.pid, signal.SIGKILL)  # a crash: no cleanup runs in the holder
    process.wait(timeout=10)
    info = run_eval(bench_dir, "oracle", out_dir=folder, progress=False)  # the OS released the lock
    assert info.n_ok == info.n_items == 9
    assert (folder / LOCK).read_text().startswith(f"PID {os.getpid()} ")


def test_scoring_takes_the_same_lock(bench_dir, tmp_path):
    folder = tmp_path / "run"
    run_eval(bench_dir, "oracle", out_dir=folder, progress=False)
    with folder_lock(folder):
        with pytest.raises(RunFolderBusy, match=f"PID {os.getpid()}"):
            score_run(folder, progress=False)
    assert score_run(folder, progress=False).n_failed == 0


def test_a_folder_made_for_a_refused_run_is_removed(tmp_path):
    with pytest.raises(RuntimeError):
        with folder_lock(tmp_path / "new"):
            raise RuntimeError("refused before writing anything")
    assert not (tmp_path / "new").exists()


def test_resume_names_a_changed_sampling_setting(bench_dir, tmp_path):
    out = tmp_path / "run"
    run_eval(bench_dir, "constant", out_dir=out, limit=2, progress=False)
    with pytest.raises(EvalUsageError, match=r"different model config .*changed: sampling setting 'temperature'"):
        run_eval(bench_dir, "constant", out_dir=out, params=GenerationParams(temperature=0.7), progress=False)
    with pytest.raises(EvalUsageError, match=r"changed: model config field 'text'.*another --out"):
        run_eval(bench_dir, ModelConfig(name="constant", backend="constant", text="Center."), out_dir=out,
                 progress=False)
    assert run_eval(bench_dir, "constant", out_dir=out, progress=False).n_ok == 9  # same settings: resumes


def test_resume_fingerprints_the_default_system_prompt_actually_sent(bench_dir, tmp_path, monkeypatch):
    out = tmp_path / "run"
    run_eval(bench_dir, "oracle", out_dir=out, limit=2, progress=False)  # system_prompt unset: the default is sent
    explicit = ModelConfig(name="oracle", backend="oracle", system_prompt=messages.SYSTEM_PROMPT)
    assert run_eval(bench_dir, explicit, out_dir=out, limit=3, progress=False).n_ok == 3  # same prompt sent
    monkeypatch.setattr(messages, "SYSTEM_PROMPT", "A new harness default prompt.")  # a newer wafersage
    with pytest.raises(EvalUsageError, match=r"changed: system prompt\)"):
        run_eval(bench_dir, "oracle", out_dir=out, progress=False)


def test_a_run_folder_without_a_fingerprint_is_refused(bench_dir, tmp_path):
    out = tmp_path / "run"
    info = run_eval(bench_dir, "oracle", out_dir=out, limit=2, progress=False)
    (out / "run.json").write_text(info.model_copy(update={"fingerprint": None}).model_dump_json())
    with pytest.raises(EvalUsageError, match="no request fingerprint .*older wafersage"):
        run_eval(bench_dir, "oracle", out_dir=out, progress=False)


def test_secrets_and_endpoints_stay_out_of_the_fingerprint_so_a_new_key_or_replica_resumes():
    config = dict(name="api", backend="openai", model="m", base_url="https://api.example.com/v1?key=sk-url-SECRET",
                  extra_body={"extra_headers": {"Authorization": "Bearer sk-header-SECRET"}})
    fingerprint = request_fingerprint(ModelConfig(**config), GenerationParams(), "hash", "test")
    assert "SECRET" not in json.dumps(fingerprint)
    rotated = request_fingerprint(ModelConfig(**{**config, "base_url": "https://api.example.com/v1?key=other"}),
                                  GenerationParams(), "hash", "test")
    assert rotated == fingerprint  # a new key asks the same model the same questions
    replicas = ["https://other.example.com/v1?key=other", "http://127.0.0.1:8000/v1"]
    moved = request_fingerprint(ModelConfig(**{**config, "base_url": replicas}), GenerationParams(), "hash", "test")
    assert moved == fingerprint  # the endpoint is where the model runs, not which model answers
    older = {**fingerprint, "model.base_url": "0" * 64}  # folders from before kept the URL in the fingerprint
    assert changed_parts(older, moved) == []
    other_model = request_fingerprint(ModelConfig(**{**config, "model": "m2"}), GenerationParams(), "hash", "test")
    assert changed_parts(fingerprint, other_model) == ["model config field 'model'"]


def test_missing_samples_are_found_by_key_when_an_earlier_larger_limit_left_extra_ones(bench_dir, tmp_path):
    out = tmp_path / "run"
    run_eval(bench_dir, "oracle", out_dir=out, limit=6, progress=False)
    info = run_eval(bench_dir, "oracle", out_dir=out, limit=3, repeats=2, progress=False)
    samples, _ = read_samples(out / SAMPLES)
    lost = (Benchmark.load(bench_dir).items("test")[0].id, 1)  # as if the run was killed before this answer was written
    kept = [s for s in samples if (s.item_id, s.repeat) != lost]
    assert len(kept) == len(samples) - 1
    (out / SAMPLES).write_text("".join(s.model_dump_json() + "\n" for s in kept))
    assert len(kept) >= info.n_items * info.repeats  # a count says "complete"; the keys say otherwise
    with pytest.warns(IncompleteRunWarning, match="1 of 6 expected answers are missing"):
        summary = score_run(out, progress=False)
    assert (summary.n_expected, summary.n_missing, summary.n_extra, summary.n_samples) == (6, 1, 3, 6)
    recorded = RunInfo.model_validate_json((out / "run.json").read_text())
    assert recorded.n_items == 3 and recorded.item_ids == [it.id for it in Benchmark.load(bench_dir).items("test")[:3]]
    (out / "run.json").write_text(recorded.model_copy(update={"item_ids": None}).model_dump_json())
    with pytest.warns(IncompleteRunWarning):  # a folder from before item_ids: the split's first n_items
        assert score_run(out, progress=False).n_missing == 1
    assert load_result(out).summary.n_missing == 1  # the extra samples do not make the scores look stale
    result = CliRunner().invoke(main, ["score", str(out)])
    assert "3 answers in" in " ".join(result.output.split()) and "not scored" in result.output
