"""The benchmark scripts work (tiny mode, one variant each: every `mmkit` call costs seconds of imports); their
figures are not asserted here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_quick(script: str, tmp_path: Path, *args: str) -> list[dict]:
    """``benchmarks/<script> --quick ARGS`` into ``tmp_path``; the rows of its ``figures.json``."""
    out = tmp_path / "bench"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--quick", *args, "--out", str(out)],
                   check=True, cwd=tmp_path, capture_output=True)
    return json.loads((out / "figures.json").read_text())


@pytest.mark.slow
def test_caption_benchmark_quick_mode(tmp_path: Path) -> None:
    rows = run_quick("caption_quality.py", tmp_path, "--variants", "attention")
    assert [r["variant"] for r in rows] == ["attention"]
    for row in rows:
        assert {"test/bleu4", "test/cider", "test/exact_match"} <= set(row["test"])
        assert {"one/bleu4", "two/bleu4", "two/exact_match"} <= set(row["scenes"])
        assert row["epochs"] == 1 and row["samples_per_s"] > 0


@pytest.mark.slow
def test_speech_benchmark_quick_mode(tmp_path: Path) -> None:
    rows = run_quick("speech_quality.py", tmp_path, "--variants", "seq2seq")
    assert [r["variant"] for r in rows] == ["seq2seq"]
    for row in rows:
        assert {"test/wer", "test/cer", "test/exact_match"} <= set(row["test"])
        assert row["epochs"] == 1 and row["samples_per_s"] > 0
        assert row["best_val_wer"] == min(h["val/wer"] for h in row["history"])  # the best, not the last
        assert set(row["wer_by_words"]) <= {"1", "2", "3", "4", "5"} and row["wer_by_words"]  # JSON keys


def test_words_right_scores_a_reading_word_by_word_in_either_order() -> None:
    from benchmarks.gan_quality import words_right

    scene = [("small", "red", "circle"), ("large", "blue", "square")]
    # "a large blue square right of a small red circle" is the same scene: all right
    assert words_right(scene, "left of", ([scene[1], scene[0]], "right of")) == {
        "colour": 2, "shape": 2, "size": 2, "relation": 1, "objects": 1}
    # as written, with one shape and the relation wrong
    assert words_right(scene, "left of", ([("small", "red", "triangle"), scene[1]], "above")) == {
        "colour": 2, "shape": 1, "size": 2, "relation": 0, "objects": 1}
    nothing = {"colour": 0, "shape": 0, "size": 0, "relation": 0, "objects": 0}
    assert words_right(scene, "left of", ([scene[0]], "")) == nothing  # one object for two: nothing counts
    assert words_right(scene, "left of", None) == nothing
    assert words_right([scene[0]], "", ([("large", "red", "circle")], "")) == {
        "colour": 1, "shape": 1, "size": 0, "relation": 0, "objects": 1}


@pytest.mark.slow
def test_gan_benchmark_quick_mode(tmp_path: Path) -> None:
    from benchmarks import gan_quality

    rows = run_quick("gan_quality.py", tmp_path, "--variants", "text-image", "text-audio")
    assert [r["variant"] for r in rows] == ["text-image", "text-audio"]
    for row, score in zip(rows, ["cycle_bleu4", "cycle_wer"], strict=True):
        assert {f"test/{score}", f"test/real_{score}", "test/cycle_exact_match", "test/fid"} <= set(row["test"])
        assert row["evaluator"]["checkpoint"] and row["epochs"] == 1 and row["samples_per_s"] > 0
    image, audio = rows
    assert {f"test/{prefix}read_{a}" for a in gan_quality.READ for prefix in ("", "real_")} <= set(image["test"])
    assert "test/mcd" in audio["test"] and "test/mcd" not in image["test"]
    # the image GAN's prompts ranked by a dual encoder trained apart (the sound's have no judge)
    assert {"test/r_precision", "test/real_r_precision"} <= set(image["test"]) and image["judge"]["checkpoint"]
    assert "test/r_precision" not in audio["test"] and audio["judge"] is None
    assert image["feature_encoder"]["checkpoint"] and audio["feature_encoder"] is None  # the vision-aided D's
    for kind in ("generated", "real"):  # word by word, each a share
        assert set(image["attributes"][kind]) == {"colour", "shape", "size", "relation", "objects"}
        assert all(0 <= v <= 1 for v in image["attributes"][kind].values())
    assert audio["attributes"] is None
    assert (tmp_path / "bench" / "curves.png").stat().st_size > 0  # the image variant's validation curves


def test_gan_curves_picture_the_image_variants(tmp_path: Path) -> None:
    from PIL import Image

    from benchmarks.gan_quality import draw_curves

    history = [{"samples": 10048 * (k + 1), "val/read_shape": 0.1 * k, "val/read_exact_match": 0.05 * k}
               for k in range(3)]
    draw_curves([{"variant": "text-image", "history": history}, {"variant": "text-audio", "history": history}],
                tmp_path / "curves.png")
    assert Image.open(tmp_path / "curves.png").size == (1100, 400)
    draw_curves([{"variant": "text-audio", "history": history}], tmp_path / "none.png")  # no image GAN: no picture
    assert not (tmp_path / "none.png").exists()


@pytest.mark.slow
def test_speech_synthesis_benchmark_quick_mode(tmp_path: Path) -> None:
    rows = run_quick("speech_synthesis.py", tmp_path, "--variants", "attention")
    assert [r["variant"] for r in rows] == ["attention"]
    (row,) = rows
    assert {"test/cycle_wer", "test/real_cycle_wer", "test/mel_l1", "test/alignment_ok"} <= set(row["test"])
    assert row["evaluator"]["checkpoint"] and row["epochs"] == 1 and row["samples_per_s"] > 0
    assert set(row["wer_by_words"]) <= {"1", "2", "3", "4", "5"} and row["wer_by_words"]  # JSON keys


@pytest.mark.slow
def test_image_qa_benchmark_quick_mode(tmp_path: Path) -> None:
    rows = run_quick("image_qa.py", tmp_path, "--variants", "pooled")
    assert [r["variant"] for r in rows] == ["pooled"]
    (row,) = rows
    assert {"test/accuracy", "test/accuracy_relation", "test/accuracy_count"} <= set(row["test"])
    assert row["epochs"] == 1 and row["samples_per_s"] > 0


@pytest.mark.slow
def test_overhead_benchmark_quick_mode(tmp_path: Path) -> None:
    """A text method on images and the GAN on audio: both plain loops and the interleaved timing work."""
    rows = run_quick("overhead.py", tmp_path, "--experiments", "seq2seq_image_caption", "gan_text_audio")
    assert [r["experiment"] for r in rows] == ["seq2seq_image_caption", "gan_text_audio"]
    for row in rows:
        assert row["precision"] == "32-true" and row["steps"] == 2
        assert row["kit_samples_per_s"] > 0 and row["plain_samples_per_s"] > 0 and row["loader_samples_per_s"] > 0
        assert row["ratio"] > 0 and len(row["ratio_quartiles"]) == 3


def test_quality_matrix_reads_the_benchmark_figures_and_judges_targets(tmp_path: Path) -> None:
    def write(name: str, rows: list[dict]) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "figures.json").write_text(json.dumps(rows))

    timing = {"train_minutes": 10.0, "samples_per_s": 100.0, "epochs": 3,
              "history": [{"samples": 10_000}, {"samples": 20_000}, {"samples": 30_000}]}
    write("caption_quality", [
        {"variant": "seq2seq", "test": {"test/bleu4": 0.86}, "samples_to_target": 20_000, **timing},
        # BLEU-4 and exact match met, but not on two-object scenes: not met
        {"variant": "attention", "test": {"test/bleu4": 0.99, "test/exact_match": 0.96},
         "scenes": {"two/exact_match": 0.85}, "samples_to_target": None, **timing}])
    write("speech_quality", [{"variant": "attention", "test": {"test/wer": 0.04}, **timing}])
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "quality_matrix.py"), "--out", str(tmp_path),
                    "--figures", str(tmp_path / "committed"), "--no-write"], check=True, capture_output=True)
    table = {r["experiment"]: r for r in json.loads((tmp_path / "quality_matrix.json").read_text())}
    assert table["seq2seq_image_caption"]["met"] is True  # 0.86 ≥ 0.85
    assert table["seq2seq_image_caption"]["samples"] == 30_000 and table["seq2seq_image_caption"]["samples_to_target"] == 20_000
    assert table["attention_image_caption"]["met"] is False  # two-object exact match 0.85 < 0.9
    assert table["attention_image_caption"]["values"]["two/exact_match"] == 0.85
    assert table["attention_text_audio"]["met"] is True  # WER 0.04 ≤ 0.05: lower is better
    assert "value" not in table["vision_aided_gan_image_caption"]  # its benchmark has not run: listed as such


def test_quality_matrix_falls_back_to_the_committed_rows(tmp_path: Path) -> None:
    from benchmarks import quality_matrix

    timing = {"train_minutes": 30.0, "samples_per_s": 150.0, "epochs": 29, "history": [{"samples": 291_392}]}
    committed, out = tmp_path / "committed", tmp_path / "out"
    committed.mkdir()
    (committed / "gan_quality.json").write_text(json.dumps([
        {"variant": "text-image", "test": {"test/read_shape": 0.23, "test/read_exact_match": 0.19}, **timing}]))
    (out / "gan_quality").mkdir(parents=True)  # this checkout ran another variant only: the committed row serves
    (out / "gan_quality" / "figures.json").write_text(json.dumps([
        {"variant": "text-audio", "test": {"test/cycle_exact_match": 0.8}, **timing}]))
    table = {r["experiment"]: r for r in quality_matrix.rows(out, committed)}
    gan = table["vision_aided_gan_image_caption"]
    assert gan["values"] == {"test/read_shape": 0.23, "test/read_exact_match": 0.19} and gan["met"] is False
    assert gan["samples"] == 291_392 and "value" not in table["seq2seq_image_caption"]
    assert table["gan_text_audio"]["value"] == 0.8 and table["gan_text_audio"]["met"] is True  # this checkout's


def test_the_quality_matrix_keeps_a_recorded_row_whose_figures_are_not_here() -> None:
    from benchmarks import quality_matrix

    row = "| gan_text_audio | test/cycle_exact_match 0.802 | ≥ 0.75 | yes | 204,544 | 150,400 (7.0 min) | 9.2 | 371 |"
    results = f"# Benchmark results\n\n## {quality_matrix.SECTION}\n\ntext\n\n| experiment | a |\n{row}\n\n## Next\n"
    kept = quality_matrix.previous_rows(results)
    assert kept == {"gan_text_audio": row}
    table = [{"experiment": "gan_text_audio", "benchmark": "gan_quality", "targets": [("test/x", 0.75, True)]},
             {"experiment": "seq2seq_text_audio", "benchmark": "speech_quality", "targets": [("test/wer", 0.25, False)]}]
    text = quality_matrix.report(table, kept)
    assert row in text and "| seq2seq_text_audio | not run (`benchmarks/speech_quality.py`)" in text


def test_rerunning_some_variants_keeps_the_other_rows_and_says_so(tmp_path: Path, monkeypatch, capsys) -> None:
    from benchmarks import common

    monkeypatch.setattr(common, "RESULTS", tmp_path / "RESULTS.md")
    out = tmp_path / "out"

    def bench(*variants: str, score: float) -> str:
        monkeypatch.setattr(sys, "argv", ["bench", "--variants", *variants, "--out", str(out)])
        common.benchmark_main(None, {"a": [], "b": []}, "x", "Section", lambda name, *_: {"variant": name,
                                                                                          "score": score},
                              lambda rows: "".join(f"{r['variant']}={r['score']} " for r in rows))
        return capsys.readouterr().out

    bench("a", "b", score=1.0)
    printed = bench("b", score=2.0)
    rows = json.loads((out / "figures.json").read_text())
    assert [(r["variant"], r["score"]) for r in rows] == [("b", 2.0), ("a", 1.0)]
    assert printed.startswith("a=1.0 b=2.0") and "Row a: kept from the run of" in printed
    assert "a=1.0 b=2.0" in (tmp_path / "RESULTS.md").read_text()


def test_a_recorded_row_without_figures_here_stops_the_rewrite_instead_of_vanishing(tmp_path: Path, monkeypatch,
                                                                                   capsys) -> None:
    from benchmarks import common

    results = tmp_path / "RESULTS.md"
    recorded = "# Benchmark results\n\n## Section\n\n| variant | score |\n|---|---|\n| a | 1.0 |\n| b | 1.0 |\n"
    results.write_text(recorded)
    monkeypatch.setattr(common, "RESULTS", results)
    monkeypatch.setattr(sys, "argv", ["bench", "--variants", "b", "--out", str(tmp_path / "fresh_out")])
    with pytest.raises(SystemExit) as stop:
        common.benchmark_main(None, {"a": [], "b": []}, "x", "Section", lambda name, *_: {"variant": name},
                              lambda rows: "| variant |\n" + "".join(f"| {r['variant']} |\n" for r in rows))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "has rows of a" in err and "--variants b a" in err
    assert results.read_text() == recorded  # row a is still there
    assert json.loads((tmp_path / "fresh_out" / "figures.json").read_text())[0]["variant"] == "b"  # b's run kept


def test_a_fresh_checkout_keeps_the_rows_committed_beside_results(tmp_path: Path, monkeypatch, capsys) -> None:
    from benchmarks import common

    monkeypatch.setattr(common, "RESULTS", tmp_path / "RESULTS.md")

    def bench(out: Path, *variants: str, score: float) -> str:
        monkeypatch.setattr(sys, "argv", ["bench", "--variants", *variants, "--out", str(out)])
        common.benchmark_main(None, {"a": [], "b": []}, "x", "Section", lambda name, *_: {"variant": name,
                                                                                          "score": score},
                              lambda rows: "".join(f"| {r['variant']} | {r['score']} |\n" for r in rows))
        return capsys.readouterr().out

    bench(tmp_path / "first_checkout", "a", "b", score=1.0)
    committed = json.loads((tmp_path / "figures" / "x.json").read_text())
    assert [(r["variant"], r["score"]) for r in committed] == [("a", 1.0), ("b", 1.0)]
    printed = bench(tmp_path / "fresh_checkout", "b", score=2.0)  # no out/ figures of a here: the committed row
    assert "| a | 1.0 |\n| b | 2.0 |" in (tmp_path / "RESULTS.md").read_text() and "Row a: kept" in printed
    committed = json.loads((tmp_path / "figures" / "x.json").read_text())
    assert [(r["variant"], r["score"]) for r in committed] == [("a", 1.0), ("b", 2.0)]


def test_samples_to_all_is_the_first_validation_meeting_every_target() -> None:
    from benchmarks.common import samples_to_all

    history = [{"samples": 10, "a": 0.7, "b": 0.1}, {"samples": 20, "a": 0.5, "b": 0.4},
               {"samples": 30, "a": 0.6, "b": 0.3}, {"samples": 40, "a": 0.9, "b": 0.5}]
    assert samples_to_all(history, [("a", 0.6)]) == 10
    assert samples_to_all(history, [("a", 0.6), ("b", 0.3)]) == 30  # a alone at 10, b alone at 20: both first at 30
    assert samples_to_all(history, [("a", 0.95)]) is None


@pytest.mark.slow
def test_contrastive_benchmark_quick_mode(tmp_path: Path) -> None:
    rows = run_quick("contrastive.py", tmp_path, "--variants", "image", "likelihood")
    image, likelihood = rows
    assert {"test/t2m_r1", "test/m2t_r10", "test/t2m_r1_same_text"} <= set(image["test"])
    ranking = likelihood["ranking"]
    assert ranking["queries"] == 8 and ranking["gallery"] == 32
    assert ranking["likelihood_s_per_query"] > 0 and ranking["dual_s_per_query"] > 0
    assert 0 <= ranking["dual_t2m_r1"] <= ranking["dual_t2m_r5"] <= ranking["dual_t2m_r10"] <= 1


@pytest.mark.slow
def test_matching_and_editing_benchmarks_quick_mode(tmp_path: Path) -> None:
    for name in ("matching", "editing"):
        (tmp_path / name).mkdir()
    (matching,) = run_quick("matching.py", tmp_path / "matching", "--variants", "cross_attention", "--seeds", "0", "1")
    assert {"test/accuracy", "test/accuracy_match"} <= set(matching["test"])
    # --seeds: one run per seed in its own directory, the row holding their mean and each seed's figures
    runs = matching["seed_runs"]
    assert [r["seed"] for r in runs] == [0, 1]
    assert all((tmp_path / "matching" / "bench" / "cross_attention" / f"seed{s}" / "run").is_dir() for s in (0, 1))
    assert matching["test"]["test/accuracy"] == pytest.approx((runs[0]["test"]["test/accuracy"]
                                                               + runs[1]["test"]["test/accuracy"]) / 2)
    seeds = [json.loads((tmp_path / "matching" / "bench" / "cross_attention" / f"seed{s}" / "run" / "config.yaml")
                        .read_text().split("seed_everything: ")[1].split()[0]) for s in (0, 1)]
    assert seeds == [0, 1]
    reader, editing = run_quick("editing.py", tmp_path / "editing")
    assert reader["variant"] == "reader" and {"test/edit_accuracy", "test/real_preserve_accuracy",
                                              "test/read_edit_accuracy", "test/real_read_preserve_accuracy"} <= set(
        editing["test"])


@pytest.mark.slow
def test_the_gpu_check_runs_every_part_in_its_cpu_dry_mode(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check"
    subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--cpu"], check=True, cwd=tmp_path,
                   capture_output=True, env={**os.environ, "OUT": str(out), "WANDB_MODE": "offline"})
    summary = (out / "summary.md").read_text()
    assert "device: cpu, mode: --cpu" in summary and "seq2seq_image_caption 32-true: kit/plain" in summary
    assert "test/bleu4" in json.loads((out / "captioner_test.json").read_text())


def test_reuse_takes_only_a_fit_that_finished(tmp_path: Path, monkeypatch) -> None:
    """``--reuse`` skips the fit of a run that ended (its mark, or an earlier run's test results); a fit cut short
    by a stop (checkpoints and a clock, but neither) is fitted again, not scored as if done."""
    import torch

    from benchmarks import common

    fits = []

    def fake_mmkit(command: str, *args: str) -> None:
        if command == "fit":
            fits.append(args)
            run = Path(args[args.index("--run_dir") + 1])
            (run / "checkpoints").mkdir(parents=True, exist_ok=True)
            torch.save({"state_dict": {"w": torch.zeros(3)}}, run / "checkpoints" / "epoch000-step1.ckpt")
            (run.parent / "validation_clock.jsonl").write_text('{"epoch": 0, "minutes": 1.0, "samples": 60}\n')
        else:
            Path(args[args.index("--results_path") + 1]).write_text('{"test/bleu4": 0.5}')

    monkeypatch.setattr(common, "mmkit", fake_mmkit)
    out = tmp_path / "variant"
    common.fit_and_test(["-c", "x.yaml"], out, None, reuse=True)
    assert len(fits) == 1 and (out / "fit_done").is_file()
    common.fit_and_test(["-c", "x.yaml"], out, None, reuse=True)
    assert len(fits) == 1  # finished: reused
    (out / "fit_done").unlink()
    (out / "test_metrics.json").unlink()  # as a stop mid-fit leaves it: checkpoints and a clock only
    torch.save({"state_dict": {}}, out / "run" / "checkpoints" / "epoch004-step5.ckpt")  # the cut fit's own
    result = common.fit_and_test(["-c", "x.yaml"], out, None, reuse=True)
    assert len(fits) == 2 and result["test"] == {"test/bleu4": 0.5} and result["parameters"] == 3
