from pathlib import Path

import pytest
import yaml

from nlpdag.errors import StageError
from nlpdag.config.params import Params, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_params_are_valid_and_match_schema_defaults():
    params = load_params(ROOT / "params.yaml")
    assert params.data.path is None
    assert params.cooccur.window == 10
    # Every key in params.yaml is a schema field, and vice versa: the file documents every knob.
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for group, fields in raw.items():
        if isinstance(fields, dict):
            assert set(fields) == set(Params.model_fields[group].annotation.model_fields), group


def test_unknown_key_names_the_key_and_the_allowed_ones():
    with pytest.raises(StageError) as err:
        parse_params({"cooccur": {"windw": 5}})
    msg = str(err.value)
    assert "cooccur.windw: unknown key" in msg and "allowed: window, weighting" in msg
    assert "\n" not in msg


def test_wrong_type_and_out_of_range_are_one_line():
    with pytest.raises(StageError, match=r"cooccur\.window: .*greater than or equal to 1 \(got 0\)"):
        parse_params({"cooccur": {"window": 0}})
    with pytest.raises(StageError, match=r"data\.test_size: .*\(got 'big'\)"):
        parse_params({"data": {"test_size": "big"}})
    with pytest.raises(StageError, match=r"cooccur\.weighting: Input should be 'harmonic' or 'uniform'"):
        parse_params({"cooccur": {"weighting": "linear"}})


def test_empty_group_means_defaults(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 3\nbow:\n")
    params = load_params(path)
    assert params.seed == 3 and params.bow.C == [4.0, 16.0, 64.0]


def test_a_C_is_one_value_or_a_grid_chosen_on_validation():
    assert parse_params({"bow": {"C": 0.5}}).bow.C == [0.5]  # a sweep's -S bow.C=0.5 fixes it
    assert parse_params({"classify": {"nb_C": [10, 1, 1]}}).classify.nb_C == [1.0, 10.0]
    with pytest.raises(StageError, match=r"classify\.nbsvm_C: .*every value must be > 0"):
        parse_params({"classify": {"nbsvm_C": [0.1, -1]}})


def test_missing_or_malformed_file(tmp_path):
    with pytest.raises(StageError, match="parameters file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(StageError, match="not valid YAML"):
        load_params(bad)
