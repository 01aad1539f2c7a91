"""Parameter counts from a params file, a mapping or a config; errors name the file, line and column."""
import pytest

from fits.trackers import RunsImportError
from fits.trackers.core import find_param_count, model_name, parse_count
from fits.trackers.params import read_params


@pytest.mark.parametrize("text, count", [("125000000", 125_000_000), ("1.25e8", 125_000_000), ("125M", 125_000_000),
                                         ("1.3B", 1_300_000_000), ("0.35b", 350_000_000), ("7k", 7000),
                                         (6.7e9, 6_700_000_000), (42, 42), (" 70B ", 70_000_000_000)])
def test_counts_are_read_from_numbers_and_labels(text, count):
    assert parse_count(text) == count


@pytest.mark.parametrize("text", ["", "big", "-5", "0", "0.2", "1.3X", None, True, float("nan")])
def test_what_is_not_a_count(text):
    assert parse_count(text) is None


def test_csv_errors_name_the_line_and_column(tmp_path):
    path = tmp_path / "P.csv"
    path.write_text("run,params\na,125M\nb,lots\n")
    with pytest.raises(RunsImportError, match="line 3: run 'b': 'lots' is not a parameter count") as caught:
        read_params(path)
    assert caught.value.path == str(path) and caught.value.field == "params"
    path.write_text("model_name,size\na,1\n")
    with pytest.raises(RunsImportError, match="no run column"):
        read_params(path)
    path.write_text("run,size\na,1\n")
    with pytest.raises(RunsImportError, match="no params column") as caught:
        read_params(path)
    assert read_params(path, params_key="size").rows["a"].params == 1
    path.write_text("run,params\na,1\na,2\n")
    with pytest.raises(RunsImportError, match="line 3: run 'a' is also on line 2"):
        read_params(path)
    path.write_text("run,params,tokens_per_step\na,1,-3\n")
    with pytest.raises(RunsImportError, match="not a positive number") as caught:
        read_params(path)
    assert caught.value.field == "tokens_per_step"


def test_json_configs_with_wandb_wrapping(tmp_path):
    path = tmp_path / "configs.json"
    path.write_text('{"a": {"model": {"value": {"n_params": 125000000}}, "lr": {"value": 3e-4, "desc": null}},'
                    ' "b": {"num_parameters": "350M"}, "c": 7}')
    table = read_params(path)
    assert {k: v.params for k, v in table.rows.items()} == {"a": 125_000_000, "b": 350_000_000, "c": 7}
    path.write_text('{"a": {"lr": 3e-4}}')
    with pytest.raises(RunsImportError, match="run 'a' has no parameter count"):
        read_params(path)


def test_disagreeing_config_keys_are_an_error():
    with pytest.raises(RunsImportError, match="different parameter counts"):
        find_param_count({"n_params": 10, "model": {"num_params": 20}}, None, where="run")
    assert find_param_count({"n_params": 10, "model": {"num_params": 20}}, "model.num_params", where="r") == (
        20, "model.num_params")
    assert find_param_count({"model_params": "see paper", "n_params": "1B"}, None, where="r") == (10**9, "n_params")


@pytest.mark.parametrize("run, name", [("sweep/a", "sweep-a"), ("=cmd", "_cmd"), ("-x", "_x"), ("a\u202eb", "ab"),
                                        ("ok-125m", "ok-125m")])
def test_model_names_follow_the_canonical_rules(run, name):
    assert model_name(run) == name
