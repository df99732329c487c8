"""`eval --shard K/N` and `merge`: shards answered apart and merged score item for item like the unsharded run;
gaps, overlaps and shards asked differently are refused naming them."""
from __future__ import annotations

import json
import shutil
from collections import defaultdict

import pytest
from click.testing import CliRunner

from wafersage.cli import main
from wafersage.harness.run.folder import load_run
from wafersage.harness.run.runner import EvalUsageError, run_eval
from wafersage.harness.run.shards import MergeError, merge_runs, shard_of
from wafersage.harness.scoring.score_run import IncompleteRunWarning, Summary, score_run
from wafersage.models.base import GenerationParams
from wafersage.reports.cli import write_report

LIMIT = 120


def _eval(bench, out, *extra: str) -> None:
    result = CliRunner().invoke(main, ["eval", "--bench", str(bench), "--model", "random", "--limit", str(LIMIT),
                                       "--out", str(out), "--no-progress", *extra])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def runs(scorer_bench, tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    _eval(scorer_bench, root / "whole")
    for k in (1, 2, 3):
        _eval(scorer_bench, root / f"s{k}", "--shard", f"{k}/3")
    score_run(root / "whole", progress=False)
    return root


def _scores(folder) -> dict[tuple[str, int], dict]:
    return {(s["item_id"], s["repeat"]): s for s in map(json.loads, (folder / "scores.jsonl").read_text().splitlines())}


def test_shards_are_wafer_groups_of_nearly_equal_size():
    wafers = [w for w in "aaabbcddddeeffg"]
    parts = [[w for w, mine in zip(wafers, shard_of(wafers, k, 3)) if mine] for k in (1, 2, 3)]
    assert sorted(w for part in parts for w in part) == sorted(wafers)
    assert [sorted(set(p)) for p in parts] == [["a", "d", "g"], ["b", "e"], ["c", "f"]]
    assert shard_of(wafers, 2, 3) == shard_of(wafers, 2, 3)


def test_three_shards_merged_score_item_for_item_like_the_whole_run(runs, scorer_bench):
    infos = [load_run(runs / f"s{k}").info for k in (1, 2, 3)]
    assert [i.shard.spec for i in infos] == ["1/3", "2/3", "3/3"] and sum(i.n_items for i in infos) == LIMIT
    wafers = defaultdict(set)
    for k, info in enumerate(infos):
        for sample in load_run(runs / f"s{k + 1}").samples:
            wafers[sample.wafer_id].add(k)
    assert all(len(shards) == 1 for shards in wafers.values())  # a wafer's questions stay in one shard
    result = CliRunner().invoke(main, ["merge", *(str(runs / f"s{k}") for k in (3, 1, 2)), "--out",
                                       str(runs / "merged")])
    assert result.exit_code == 0, result.output
    assert f"{LIMIT} items, {LIMIT} ok, 0 failed" in result.output
    merged, whole = load_run(runs / "merged").info, load_run(runs / "whole").info
    assert merged.item_ids == whole.item_ids and merged.shard is None and merged.fingerprint == whole.fingerprint
    assert [m["shard"] for m in merged.merged_from] == ["3/3", "1/3", "2/3"]
    assert [s.item_id for s in load_run(runs / "merged").samples] == whole.item_ids
    assert CliRunner().invoke(main, ["score", str(runs / "merged")]).exit_code == 0
    mine, theirs = _scores(runs / "merged"), _scores(runs / "whole")
    assert mine.keys() == theirs.keys()
    for key, score in mine.items():
        assert (score["rule_score"], score["rule"], score["answer"]) == \
            (theirs[key]["rule_score"], theirs[key]["rule"], theirs[key]["answer"]), key
    summaries = [json.loads((runs / f / "summary.json").read_text()) for f in ("merged", "whole")]
    assert summaries[0]["rule"] == summaries[1]["rule"] and summaries[0]["n_items"] == LIMIT
    board = write_report([runs / "whole", runs / "merged"], runs / "board.html")  # compared like any run
    assert {row.n_items for row in board.rows} == {LIMIT} and not board.warnings
    gate = CliRunner().invoke(main, ["compare", str(runs / "whole"), str(runs / "merged")])
    assert gate.exit_code == 0, gate.output


def test_gaps_and_overlaps_are_named(runs, tmp_path):
    with pytest.raises(MergeError) as gap:
        merge_runs([runs / "s1", runs / "s2"], tmp_path / "gap")
    message = str(gap.value)
    third = load_run(runs / "s3").info.item_ids
    assert f"{len(third)} items are in no shard: {third[0]}" in message and "shard 3/3 not given" in message
    shutil.copytree(runs / "s2", tmp_path / "s2-again")
    result = CliRunner().invoke(main, ["merge", str(runs / "s1"), str(runs / "s2"), str(tmp_path / "s2-again"),
                                       str(runs / "s3"), "--out", str(tmp_path / "overlap")])
    assert result.exit_code == 2
    second = load_run(runs / "s2").info.item_ids
    assert f"{len(second)} items are in more than one shard: {second[0]}" in result.output
    assert f"{runs / 's2'} and {tmp_path / 's2-again'}" in " ".join(result.output.split())
    assert not (tmp_path / "gap").exists() and not (tmp_path / "overlap").exists()


def test_shards_asked_differently_are_refused(runs, scorer_bench, tmp_path):
    run_eval(scorer_bench, "random", limit=LIMIT, shard="3/3", out_dir=tmp_path / "hot", progress=False,
             params=GenerationParams(temperature=0.7))
    with pytest.raises(MergeError, match="changed: sampling setting 'temperature'"):
        merge_runs([runs / "s1", runs / "s2", tmp_path / "hot"], tmp_path / "m1")
    _eval(scorer_bench, tmp_path / "short", "--shard", "3/3", "--limit", "60")
    with pytest.raises(MergeError, match="shards of different selections .*another --limit"):
        merge_runs([runs / "s1", runs / "s2", tmp_path / "short"], tmp_path / "m2")
    with pytest.raises(EvalUsageError, match="holds shard 1/3, not shard 2/3; rerun with --shard 1/3"):
        run_eval(scorer_bench, "random", limit=LIMIT, shard="2/3", out_dir=runs / "s1", progress=False)
    for bad in ("0/3", "4/3", "two"):
        result = CliRunner().invoke(main, ["eval", "--bench", str(scorer_bench), "--model", "random",
                                           "--shard", bad, "--out", str(tmp_path / "bad")])
        assert result.exit_code == 2 and "give K/N with 1 <= K <= N" in result.output


def test_an_interrupted_shard_leaves_its_answers_missing_and_eval_finishes_the_merged_run(runs, tmp_path):
    shutil.copytree(runs / "s2", tmp_path / "s2")
    lines = (tmp_path / "s2" / "samples.jsonl").read_text().splitlines()
    (tmp_path / "s2" / "samples.jsonl").write_text("\n".join(lines[:5]) + "\n")
    result = merge_runs([runs / "s1", tmp_path / "s2", runs / "s3"], tmp_path / "merged")
    assert len(result.missing) == len(lines) - 5 and result.info.n_failed == len(lines) - 5
    with pytest.warns(IncompleteRunWarning):
        summary = score_run(tmp_path / "merged", progress=False)
    assert summary.n_missing == len(lines) - 5
    info = run_eval(result.info.bench_dir, "random", limit=LIMIT, out_dir=tmp_path / "merged", progress=False)
    assert info.n_ok == LIMIT and info.n_failed == 0
    finished = score_run(tmp_path / "merged", progress=False)
    assert finished.rule == Summary.model_validate_json((runs / "whole" / "summary.json").read_text()).rule


def test_shards_scored_alike_bring_their_scores_and_others_are_named(runs, tmp_path):
    shards = []
    for k in (1, 2, 3):
        shards.append(tmp_path / f"s{k}")
        shutil.copytree(runs / f"s{k}", shards[-1])
        if k != 2:
            score_run(shards[-1], progress=False)
    result = CliRunner().invoke(main, ["merge", *map(str, shards), "--out", str(tmp_path / "unscored")])
    assert result.exit_code == 0 and f"not scored ({shards[1]} is not scored)" in " ".join(result.output.split())
    assert not (tmp_path / "unscored" / "summary.json").exists()
    score_run(shards[1], progress=False)
    result = CliRunner().invoke(main, ["merge", *map(str, shards), "--out", str(tmp_path / "carried")])
    assert result.exit_code == 0 and "the shards' scores carried over" in result.output, result.output
    carried = (tmp_path / "carried" / "scores.jsonl").read_text()
    summary = Summary.model_validate_json((tmp_path / "carried" / "summary.json").read_text())
    rescored = score_run(tmp_path / "carried", progress=False)  # what scoring the merged folder once gives
    assert (tmp_path / "carried" / "scores.jsonl").read_text() == carried and summary == rescored
    samples = (shards[2] / "samples.jsonl").read_text()
    (shards[2] / "samples.jsonl").write_text(samples.replace('"text":"', '"text":"Changed. ', 1))
    result = CliRunner().invoke(main, ["merge", *map(str, shards), "--out", str(tmp_path / "stale")])
    assert f"not scored ({shards[2]} changed after it was scored)" in " ".join(result.output.split())
