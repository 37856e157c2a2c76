import dataclasses

import pytest
import yaml

from medclass.config import (
    AugmentConfig,
    RunConfig,
    build_config,
    config_from_dict,
    config_to_dict,
    parse_overrides,
    validate,
)
from medclass.errors import ConfigError
from medclass.recipes import RECIPES


def test_defaults_are_valid_and_are_the_default_recipe():
    cfg = validate(RunConfig())
    assert cfg.recipe == "default"
    assert build_config() == cfg
    assert RECIPES["default"] == {}


def test_round_trip_through_dict_and_yaml():
    cfg = build_config("medmnist-reference")
    d = yaml.safe_load(yaml.safe_dump(config_to_dict(cfg)))
    assert config_from_dict(d) == cfg
    # the paper keeps the first epoch with the highest val AUC; default keeps the latest one tied within 1 SE
    assert cfg.train.checkpoint_tolerance == 0 and build_config("default").train.checkpoint_tolerance == 1


def test_precedence_defaults_recipe_yaml_flags(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lr: 0.01\n  epochs: 7\nmodel:\n  name: resnet34\n")
    cfg = build_config("medmnist-reference", f, parse_overrides(["train.epochs=9"]))
    assert cfg.train.optimizer == "adam"  # from the recipe
    assert cfg.train.lr == 0.01  # YAML beats recipe
    assert cfg.train.epochs == 9  # flag beats YAML
    assert cfg.model.name == "resnet34"


def test_recipe_named_in_yaml(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("recipe: medmnist-reference\n")
    assert build_config(None, f).model.name == "resnet18"


def test_unknown_key_suggests_nearest():
    with pytest.raises(ConfigError, match=r"train\.lrr: unknown setting\. Did you mean 'lr'\?"):
        build_config(overrides=parse_overrides(["train.lrr=0.1"]))


def test_all_problems_reported_together_with_dotted_keys():
    with pytest.raises(ConfigError) as e:
        build_config(overrides=parse_overrides(["train.lr=-1", "train.optimizer=adma", "data.size=30",
                                                "train.augment.rotate=500"]))
    msg = str(e.value)
    assert "4 problems" in msg
    assert "train.lr must be > 0. Got -1.0 instead." in msg
    assert ("train.optimizer must be one of sgd, momentum, nesterov, rmsprop, adagrad, adadelta, adam, adamw. "
            "Got 'adma' instead. Did you mean 'adam'?") in msg
    assert "data.size must be 28, 64, 128 or 224 for a MedMNIST dataset. Got 30 instead." in msg
    assert "train.augment.rotate must be <= 180" in msg


def test_type_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"train\.epochs: expected an integer, got 'many'"):
        build_config(overrides={"train": {"epochs": "many"}})
    with pytest.raises(ConfigError, match=r"train\.epochs: expected an integer, got 2\.5"):
        build_config(overrides={"train": {"epochs": 2.5}})


def test_override_parsing_types():
    o = parse_overrides(["train.augment.hflip=true", "data.mean=[0.4, 0.5, 0.6]", "data.data_dir=null",
                         "data.std=0.2,0.3,0.4"])
    cfg = build_config(overrides=o)
    assert cfg.train.augment.hflip is True
    assert cfg.data.mean == (0.4, 0.5, 0.6) and cfg.data.std == (0.2, 0.3, 0.4)
    assert cfg.data.data_dir is None
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["train.lr"])


def test_unknown_recipe_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="Unknown recipe 'defualt'. Did you mean 'default'"):
        build_config("defualt")
    with pytest.raises(ConfigError, match="does not exist"):
        build_config(None, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        build_config(None, bad)


def test_combinations_checked():
    with pytest.raises(ConfigError, match="same length"):
        build_config(overrides={"data": {"mean": [0.5, 0.5], "std": [0.5]}})
    with pytest.raises(ConfigError, match="milestones"):
        build_config(overrides={"train": {"schedule": "multistep", "milestones": [0.8, 0.2]}})
    with pytest.raises(ConfigError, match="train.device"):
        build_config(overrides={"train": {"device": "gpu"}})


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'seed'"):
        RunConfig().seed = 3  # type: ignore[misc]
    assert not AugmentConfig().enabled and AugmentConfig(hflip=True).enabled


def test_partial_nested_override_keeps_the_other_defaults(tmp_path):
    cfg = build_config(overrides=parse_overrides(["train.augment.hflip=true"]))
    assert cfg.train.augment.hflip and cfg.train.class_weights == RunConfig().train.class_weights
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  augment:\n    translate: 0.2\n")
    cfg = build_config(None, f)
    assert cfg.train.augment.translate == 0.2 and cfg.train.epochs == RunConfig().train.epochs
    ref = build_config("medmnist-reference", overrides=parse_overrides(["train.augment.rotate=5"]))
    assert ref.train.augment.rotate == 5 and ref.train.optimizer == "adam"  # the recipe's values are kept


def test_nested_dataclass_defaults_are_the_parent_field_default():
    from dataclasses import dataclass, field

    from medclass.config import _from_dict

    @dataclass(frozen=True)
    class Outer:
        inner: AugmentConfig = field(default_factory=lambda: AugmentConfig(rotate=7.0))

    problems: list = []
    got = _from_dict({"inner": {"hflip": True}}, Outer, "", problems)
    assert not problems and got.inner == AugmentConfig(rotate=7.0, hflip=True)


def test_check_table_keys_wants_exactly_the_declared_names():
    from medclass.config import check_table_keys

    check_table_keys({"a": 1, "b": 2}, ("a", "b"), "t")
    with pytest.raises(ImportError, match=r"^t must have exactly .*\(a, b, c\); missing: c; not declared: none\.$"):
        check_table_keys({"a": 1, "b": 2}, ("a", "b", "c"), "t")
    with pytest.raises(ImportError, match=r"missing: b; not declared: z\.$"):
        check_table_keys({"a": 1, "z": 2}, ("a", "b"), "t")


def test_on_off_words_stay_words_for_string_settings_and_switch_booleans():
    from medclass.config import build_config, parse_overrides

    cfg = build_config(overrides=parse_overrides(["data.leakage=off", "train.channels_last=off", "data.cache=yes"]))
    assert cfg.data.leakage == "off" and cfg.train.channels_last is False and cfg.data.cache is True


def test_typed_flags_reach_the_config_typed(tmp_path):
    """A data folder named like a YAML comment or boolean stays the path it is (issue: `#1` was cut off)."""
    from medclass.cli.main import build_parser
    from medclass.cli.options import config_from_args

    for folder in ("/data/run #1", "on", "[weird]: x"):
        args = build_parser().parse_args(["train", "--data-dir", folder, "--dataset", "breastmnist", "--lr", "1e-3"])
        cfg = config_from_args(args)
        assert cfg.data.data_dir == folder and cfg.train.lr == 1e-3
