import pytest

from medclass.config import build_config
from medclass.errors import ConfigError
from medclass.recipes import RECIPES, get_recipe, list_recipes


def test_changing_a_returned_recipe_leaves_the_recipe_alone():
    r = get_recipe("medmnist-reference")
    r["train"]["lr"] = 99.0
    r["train"]["milestones"].append(0.9)
    r["train"]["augment"]["hflip"] = True
    r["data"].clear()
    fresh = get_recipe("medmnist-reference")
    assert fresh == RECIPES["medmnist-reference"] and fresh is not RECIPES["medmnist-reference"]
    assert fresh["train"]["lr"] == 1e-3 and fresh["train"]["milestones"] == [0.5, 0.75]
    assert not fresh["train"]["augment"]["hflip"] and fresh["data"] == {"mean": [0.5], "std": [0.5]}
    assert build_config("medmnist-reference").train.lr == 1e-3


def test_unknown_recipe_names_the_known_ones():
    assert list_recipes() == ["medmnist-reference", "default", "default-balanced"]
    with pytest.raises(ConfigError, match=r"Unknown recipe 'medmnist'\. Did you mean 'medmnist-reference'\? "
                                          r"Available: medmnist-reference, default, default-balanced\."):
        get_recipe("medmnist")
