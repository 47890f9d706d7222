"""No traceback reaches a user: a library's own error in a stage or an `nlpdag` command is one line
naming the stage (or command), the input or parameter, the library and its message; exit code 2."""
import sys

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression

from conftest import ROOT, run
from nlpdag.text import bow
from nlpdag.errors import StageError, involving, report
from nlpdag.config.bow import BowParams


def _old_liblinear_fit():
    """The fresh-install bug: liblinear asked for three classes (scikit-learn >= 1.8 refuses)."""
    docs = [["a", "b"], ["c", "d"], ["e", "f"]] * 4
    return bow.fit_tfidf_logreg(docs, np.arange(12) % 3, BowParams(min_df=1, C=16))


def test_library_error_is_one_line_naming_stage_parameter_and_library(monkeypatch, capsys):
    monkeypatch.delenv("NLPDAG_DEBUG", raising=False)
    monkeypatch.setattr(bow, "logistic_regression",
                        lambda C, n, seed=0: LogisticRegression(C=C, solver="liblinear"))
    with pytest.raises(SystemExit) as exit_:
        report("bow", _old_liblinear_fit)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: bow: tfidf_logreg (bow.C=16, 3 classes): scikit-learn {sklearn.__version__} "
                          "ValueError: The 'liblinear' solver does not support multiclass classification")
    assert err.rstrip().endswith("(set NLPDAG_DEBUG=1 for the traceback)")


def test_debug_shows_the_traceback(monkeypatch, capsys):
    monkeypatch.setenv("NLPDAG_DEBUG", "1")

    def boom():
        with involving("data/x.parquet"):
            raise KeyError("doc_id")

    with pytest.raises(SystemExit):
        report("tokenise", boom)
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1] == "error: tokenise: data/x.parquet: KeyError: 'doc_id'"


def test_stage_error_keeps_its_own_line(capsys, monkeypatch):
    monkeypatch.delenv("NLPDAG_DEBUG", raising=False)

    def bad():
        raise StageError("params.yaml: bow.C: must be > 0")

    with pytest.raises(SystemExit) as exit_:
        report("bow", bad)
    assert exit_.value.code == 2 and capsys.readouterr().err == "error: params.yaml: bow.C: must be > 0\n"


def test_a_stage_run_as_a_module_names_itself(tmp_path):
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    code = ("import runpy, sys; from nlpdag.io import tables as io; "
            "io.read_table = lambda *a, **k: (_ for _ in ()).throw(MemoryError('out of memory')); "
            "runpy.run_module('stages.bow', run_name='__main__')")
    proc = run([sys.executable, "-c", code], tmp_path, check=False, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert proc.returncode == 2
    assert proc.stderr == "error: bow: MemoryError: out of memory (set NLPDAG_DEBUG=1 for the traceback)\n"


def test_nlpdag_command_turns_an_unexpected_error_into_one_line(monkeypatch, capsys):
    import nlpdag.runs.dag
    from nlpdag import cli

    monkeypatch.delenv("NLPDAG_DEBUG", raising=False)
    monkeypatch.setattr(nlpdag.runs.dag, "find_root", lambda repo: (_ for _ in ()).throw(RuntimeError("disk on fire")))
    monkeypatch.setattr(sys, "argv", ["nlpdag", "dag"])
    with pytest.raises(SystemExit) as exit_:
        cli.app()
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: nlpdag dag: RuntimeError: disk on fire (set NLPDAG_DEBUG=1 for the traceback)\n"


def test_predict_file_that_is_not_utf8_names_the_file(tmp_path):
    latin1 = tmp_path / "reviews.txt"
    latin1.write_bytes("a fine film\nun film très émouvant\n".encode("latin-1"))
    proc = run(["nlpdag", "predict", "--file", str(latin1), "--repo", str(ROOT)], ROOT, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr == (f"error: {latin1}: not UTF-8 text (byte 0xe8 at offset 22, line 2: invalid continuation "
                           "byte); convert it first, e.g. iconv -f latin1 -t utf-8\n")
