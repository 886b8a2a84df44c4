"""Hyperparameters: the paper's defaults, presets (params/*.yaml) and their validation."""
import dataclasses
import textwrap

import pytest
import yaml

from lth_utils.config import (OVERRIDABLE, PRESETS_DIR, STRATEGIES, Hparams, available_presets,
                              read_preset, resolve)
from lth_utils.errors import LTHError
from lth_utils.paper import FIGURE_2

ARCHS = sorted(FIGURE_2)
PRESETS = ["paper", "quick", "smoke"]


def write_preset(tmp_path, text, name="custom.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_the_three_presets_exist():
    assert set(PRESETS) <= set(available_presets())


@pytest.mark.parametrize("name", ["claims", "params/claims.yaml"])
def test_the_claims_file_is_not_a_preset(name):
    assert "claims" not in available_presets()
    with pytest.raises(LTHError, match="unknown preset .*choose one of paper, quick, smoke"):
        read_preset(str(PRESETS_DIR.parent / name) if "/" in name else name)


def test_paper_hparams_are_figure_2():
    hp = Hparams.paper("conv4")
    assert (hp.iterations, hp.learning_rate, hp.batch_size, hp.rounds) == (25_000, 3e-4, 60, 22)
    assert (hp.prune_rate_conv, hp.prune_rate_fc, hp.prune_rate_output) == (0.10, 0.20, 0.10)
    assert hp.dataset == "cifar10" and hp.datasets == ("cifar10",)
    assert (hp.trials, hp.eval_every, hp.validation_size, hp.eval_limit) == (5, 100, 5000, 0)
    assert hp.strategies == ("winning_ticket", "random_reinit", "random_sparse", "oneshot")


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("arch", ARCHS)
def test_resolve_each_preset_and_arch(arch, preset):
    hp = resolve(arch, preset=preset)
    assert isinstance(hp, Hparams)
    assert (hp.arch, hp.dataset, hp.preset) == (arch, FIGURE_2[arch].dataset, preset)
    # the preset changes exactly the keys it states (top level, then the arch's own), no more
    raw = yaml.safe_load((PRESETS_DIR / f"{preset}.yaml").read_text()) or {}
    stated = {k: v for k, v in raw.items() if k not in ("description", "architectures")}
    stated.update((raw.get("architectures") or {}).get(arch) or {})
    paper = Hparams.paper(arch)
    for field in dataclasses.fields(Hparams):
        value = getattr(hp, field.name)
        if field.name == "preset":
            continue
        if field.name in stated:
            want = stated[field.name]
            assert value == (tuple(want) if isinstance(want, list) else want), field.name
        else:
            assert value == getattr(paper, field.name), field.name


def test_paper_preset_changes_nothing():
    for arch in ARCHS:
        assert resolve(arch, preset="paper") == Hparams.paper(arch)


def test_quick_lenet_keeps_paper_learning_rate_and_batch():
    hp = resolve("lenet", preset="quick")
    assert hp.learning_rate == 1.2e-3 and hp.batch_size == 60
    stated = yaml.safe_load((PRESETS_DIR / "quick.yaml").read_text())
    assert (hp.iterations, hp.rounds) == (stated["architectures"]["lenet"]["iterations"],
                                          stated["architectures"]["lenet"]["rounds"])
    assert hp.trials == stated["trials"]
    assert hp.prune_rate_fc == 0.2 and hp.prune_rate_output == 0.1


def test_quick_conv2_per_arch_values_win_over_top_level():
    hp = resolve("conv2", preset="quick")
    assert hp.trials == 1  # top level says 2, architectures.conv2 says 1
    assert hp.strategies == ("winning_ticket", "random_reinit")
    assert hp.learning_rate == 2e-4 and hp.batch_size == 60  # the paper's, not restated
    assert hp.eval_limit > 0 and hp.iterations < Hparams.paper("conv2").iterations


def test_smoke_preset_is_small_and_runs_every_strategy_on_lenet():
    hp = resolve("lenet", preset="smoke")
    assert hp.strategies == STRATEGIES
    assert hp.iterations <= 200 and hp.rounds >= 1 and 0 < hp.eval_limit <= 1000
    assert 0 < hp.rewind_iteration < hp.iterations
    assert hp.learning_rate == 1.2e-3 and hp.batch_size == 60  # the paper's


@pytest.mark.parametrize("arch", ["conv2", "conv4", "conv6"])
def test_smoke_preset_resolves_for_conv_nets(arch):
    """Regression: smoke's top-level rewind_iteration (50) must be overridden for the conv nets,
    whose smoke runs are a few dozen iterations at most (it once made resolve(conv*, "smoke")
    fail with "rewind_iteration must be in [0, iterations), not 50")."""
    hp = resolve(arch, preset="smoke")
    assert hp.iterations < resolve("lenet", preset="smoke").iterations
    assert 0 <= hp.rewind_iteration < hp.iterations


def test_overrides_apply_and_none_is_ignored():
    hp = resolve("lenet", preset="smoke", trials=1, strategies=["oneshot"], iterations=None)
    assert hp.trials == 1 and hp.strategies == ("oneshot",) and hp.iterations == 200


def test_preset_by_path_uses_its_stem(tmp_path):
    path = write_preset(tmp_path, "iterations: 7\nlearning_rate: 1e-3\n", "mine.yml")
    hp = resolve("lenet", preset=path)
    assert hp.preset == "mine" and hp.iterations == 7
    assert hp.learning_rate == 1e-3 and isinstance(hp.learning_rate, float)


def test_empty_preset_is_the_paper(tmp_path):
    hp = resolve("lenet", preset=write_preset(tmp_path, "# nothing\n"))
    assert dataclasses.replace(hp, preset="paper") == Hparams.paper("lenet")


# --- errors ------------------------------------------------------------------------------------

def test_unknown_top_level_key(tmp_path):
    path = write_preset(tmp_path, "iterations: 10\nlearnig_rate: 0.1\n")
    with pytest.raises(LTHError, match="learnig_rate"):
        resolve("lenet", preset=path)


def test_unknown_key_under_architecture(tmp_path):
    path = write_preset(tmp_path, """\
        architectures:
          lenet:
            iterations: 10
            itterations: 5
        """)
    with pytest.raises(LTHError, match=r"architectures\.lenet\.itterations"):
        resolve("lenet", preset=path)
    with pytest.raises(LTHError, match="itterations"):  # checked whatever arch is resolved
        resolve("conv2", preset=path)


@pytest.mark.parametrize("key", ["arch", "dataset", "preset"])
def test_identity_keys_are_not_overridable(tmp_path, key):
    assert key not in OVERRIDABLE
    with pytest.raises(LTHError, match=key):
        read_preset(write_preset(tmp_path, f"{key}: lenet\n"))


def test_unknown_architecture_in_preset(tmp_path):
    path = write_preset(tmp_path, "architectures:\n  lenet5: {iterations: 3}\n")
    with pytest.raises(LTHError, match="lenet5"):
        resolve("lenet", preset=path)


def test_malformed_yaml(tmp_path):
    path = write_preset(tmp_path, "iterations: [1, 2\nrounds: 3\n")
    with pytest.raises(LTHError, match="not valid YAML"):
        resolve("lenet", preset=path)


@pytest.mark.parametrize("text", ["- iterations\n- 10\n", "just a string\n", "42\n"])
def test_non_mapping_yaml(tmp_path, text):
    with pytest.raises(LTHError, match="mapping"):
        resolve("lenet", preset=write_preset(tmp_path, text))


@pytest.mark.parametrize("text", ["architectures: [lenet]\n", "architectures:\n  lenet: 3\n"])
def test_non_mapping_architectures(tmp_path, text):
    with pytest.raises(LTHError):
        resolve("lenet", preset=write_preset(tmp_path, text))


@pytest.mark.parametrize("text, field", [
    ('iterations: "many"\n', "iterations"),
    ("iterations: 1.5\n", "iterations"),
    ("trials: true\n", "trials"),
    ("learning_rate: fast\n", "learning_rate"),
    ("strategies: winning_ticket\n", "strategies"),
    ("normalization: 3\n", "normalization"),
    ("architectures:\n  lenet: {rounds: two}\n", "rounds"),
])
def test_wrong_types(tmp_path, text, field):
    with pytest.raises(LTHError, match=field):
        resolve("lenet", preset=write_preset(tmp_path, text))


@pytest.mark.parametrize("text, field", [
    ("iterations: 0\n", "iterations"),
    ("prune_rate_fc: 1.0\n", "prune_rate_fc"),
    ("strategies: [winning_ticket, lucky]\n", "lucky"),
    ("strategies: []\n", "strategy"),
    ("normalization: whiten\n", "whiten"),
    ("rewind_iteration: 50000\n", "rewind_iteration"),
])
def test_out_of_range_values(tmp_path, text, field):
    with pytest.raises(LTHError, match=field):
        resolve("lenet", preset=write_preset(tmp_path, text))


def test_unknown_preset_name():
    with pytest.raises(LTHError, match="unknown preset 'nosuchpreset'"):
        resolve("lenet", preset="nosuchpreset")


def test_missing_preset_path(tmp_path):
    with pytest.raises(LTHError, match="unknown preset"):
        resolve("lenet", preset=str(tmp_path / "absent.yaml"))


def test_unknown_arch_and_dataset():
    with pytest.raises(LTHError, match="resnet"):
        resolve("resnet")
    with pytest.raises(LTHError, match="svhn"):
        resolve("lenet", "svhn")


@pytest.mark.parametrize("arch, dataset", [("conv2", "mnist"), ("lenet", "cifar10"),
                                           ("conv6", "mnist")])
def test_wrong_arch_dataset_pair(arch, dataset):
    with pytest.raises(LTHError, match=f"{arch} is not trained on {dataset}"):
        resolve(arch, dataset)


def test_preset_can_allow_another_dataset(tmp_path):
    """A preset may widen the datasets of one architecture, and only of that one."""
    path = write_preset(tmp_path, "architectures: {conv2: {datasets: [cifar10, mnist]}}\n")
    hp = resolve("conv2", "mnist", preset=path)
    assert hp.dataset == "mnist" and hp.datasets == ("cifar10", "mnist")
    assert resolve("conv2", preset=path).dataset == "cifar10"  # the default stays the paper's
    with pytest.raises(LTHError, match="conv4 is not trained on mnist"):
        resolve("conv4", "mnist", preset=path)  # only conv2 was widened


def test_science_leaves_out_bookkeeping():
    hp = resolve("lenet", preset="smoke")
    science = hp.science()
    assert {"preset", "trials", "strategies", "datasets"}.isdisjoint(science)
    assert science["learning_rate"] == 1.2e-3 and science["iterations"] == 200
    again = Hparams(**hp.to_dict())
    assert again == hp
