"""A newcomer's mistakes cost nothing: a bad spec or a params typo stops before DVC deletes any output,
and a stage that fails at run time leaves the previous outputs usable (DVC, `nlpdag run`, `predict`)."""
import hashlib
from pathlib import Path

import pytest
import yaml

from conftest import clone_repo, run, run_env
from test_pipeline import set_params

PREDICT = ["nlpdag", "predict", "a wonderful, moving film", "a dull mess"]


def snapshot(repo: Path) -> dict[str, str]:
    """Digest of every trained model file and every metrics file."""
    files = [*sorted((repo / "data/models").rglob("*")), *sorted((repo / "reports/metrics").glob("*.json"))]
    return {str(p.relative_to(repo)): hashlib.md5(p.read_bytes()).hexdigest() for p in files if p.is_file()}


@pytest.fixture
def repo(small_baseline, tmp_path) -> Path:
    return clone_repo(small_baseline, tmp_path / "repo")


@pytest.mark.slow
def test_a_bad_spec_or_a_typo_costs_nothing(repo, tmp_path):
    before, predicted = snapshot(repo), run(PREDICT, repo).stdout
    assert any(p.endswith("model.pt") for p in before)
    params = (repo / "params.yaml").read_text()

    # A spec that does not exist, under `dvc repro`: the `check` stage stops the run first.
    set_params(repo, {"classify": {"models": {"bigru_attention": "gru-bi-attention@word2vec_skipgram",
                                              "cnn": "cnn-max@glove"}}})
    proc = run(["dvc", "repro"], repo, check=False)
    assert proc.returncode != 0
    assert "Running stage 'check'" in proc.stdout and "Running stage 'neural" not in proc.stdout
    assert "error: params.yaml: classify.models: 'cnn-max@glove' is not <cell>[-bi]-<pooling>@<embedding>" in proc.stderr
    assert snapshot(repo) == before and run(PREDICT, repo).stdout == predicted
    # The list form (the old one) is refused by DVC itself while it reads dvc.yaml: nothing runs either.
    set_params(repo, {"classify": {"models": ["lstm-bi-attention@word2vec_skipgram", "cnn-max@glove"]}})
    proc = run(["dvc", "repro"], repo, check=False)
    assert proc.returncode != 0 and "Running stage" not in proc.stdout
    assert snapshot(repo) == before and run(PREDICT, repo).stdout == predicted

    # A misspelt key under `nlpdag run`: one line, exit 2, nothing started.
    raw = yaml.safe_load(params)
    raw["word2vec"]["epoch"] = raw["word2vec"].pop("epochs")
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    proc = run(["nlpdag", "run"], repo, check=False, env={**run_env(), "PREFECT_HOME": str(tmp_path / "prefect")})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: " + str(repo / "params.yaml") + ": word2vec.epoch: unknown key; allowed: size, window, min_count, "
        "negative, hs, sample, epochs, workers"]
    assert snapshot(repo) == before and run(PREDICT, repo).stdout == predicted

    # Fixed: the check's stamp (which DVC removed before running it) comes back from the run cache, and
    # nothing retrains.
    (repo / "params.yaml").write_text(params)
    out = run(["dvc", "repro"], repo).stdout
    assert "Stage 'check' is cached - skipping run, checking out outputs" in out and "Running stage" not in out, out
    assert "Data and pipelines are up to date" in run(["dvc", "status"], repo).stdout
    assert snapshot(repo) == before and run(PREDICT, repo).stdout == predicted


@pytest.mark.slow
def test_a_stage_failing_at_run_time_leaves_its_outputs_usable(repo, tmp_path):
    before, predicted = snapshot(repo), run(PREDICT, repo).stdout
    set_params(repo, {"classify": {"device": "cuda"}})  # valid params; fails only on a machine without CUDA
    env = {**run_env(), "PREFECT_HOME": str(tmp_path / "prefect"), "CUDA_VISIBLE_DEVICES": ""}
    proc = run(["nlpdag", "run"], repo, check=False, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "classify.device=cuda but CUDA is not available" in error[0]
    assert "its previous outputs are back" in error[0]
    assert snapshot(repo) == before and run(PREDICT, repo).stdout == predicted
    status = run(["dvc", "status"], repo).stdout
    assert "neural@bigru_attention" in status and "changed deps" in status

    # Under plain `dvc repro` DVC deletes them first; the stage says how to get them back, no retraining.
    proc = run(["dvc", "repro", "neural@bigru_attention"], repo, check=False, env=env)
    assert proc.returncode != 0
    assert "`dvc checkout --force neural@bigru_attention` brings the last ones back" in proc.stderr
    run(["dvc", "checkout", "--force", "neural@bigru_attention"], repo)
    assert snapshot(repo) == before and run(PREDICT, repo).stdout == predicted
