"""Hyperparameters: the paper's defaults, presets (params/*.yaml) and their validation."""
import dataclasses
import re
import tempfile
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st

from lth_utils.config import OVERRIDABLE, STRATEGIES, Hparams, prunable_layers
from lth_utils.errors import LTHError
from lth_utils import paper
from lth_utils.paper import FIGURE_2
from lth_utils.presets import (CLAIMS_FILE, PRESETS_DIR, available_presets, read_preset,
                               resolve)

REPO = Path(__file__).resolve().parent.parent
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
    with pytest.raises(LTHError, match="unknown preset .*choose one of paper, paper_standardize, quick, smoke"):
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


def test_odd_keys_are_named_on_one_line(tmp_path):
    """A key with a line break (here NEL, U+0085) is shown quoted: the error stays one line."""
    path = write_preset(tmp_path, 'architectures:\n  conv2:\n    ? "\\N"\n    : null\n')
    with pytest.raises(LTHError, match=re.escape("unknown key architectures.conv2.'\\x85'")) as e:
        resolve("lenet", preset=path)
    assert len(str(e.value).splitlines()) == 1


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
    with pytest.raises(LTHError, match="preset file .*absent.yaml does not exist"):
        resolve("lenet", preset=str(tmp_path / "absent.yaml"))


def test_unknown_key_lists_every_key_the_scope_allows(tmp_path):
    with pytest.raises(LTHError, match="known keys: architectures, batch_size, .*description"):
        resolve("lenet", preset=write_preset(tmp_path, "descripton: typo\n"))
    with pytest.raises(LTHError) as e:
        resolve("lenet", preset=write_preset(tmp_path, "architectures: {lenet: {x: 1}}\n"))
    assert "description" not in str(e.value)


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


def test_normalization_defaults_to_the_datasets_own(tmp_path, monkeypatch):
    """The default normalization is the dataset's (paper.NORMALIZATION), also where a preset
    lets an architecture train on another dataset; a preset's or a flag's value wins."""
    assert Hparams.paper("lenet").normalization == "scale"  # MNIST's: the README's rule
    assert resolve("lenet", preset="paper_standardize").normalization == "standardize"
    monkeypatch.setattr(paper, "NORMALIZATION", {"mnist": "standardize", "cifar10": "scale"})
    assert Hparams.paper("lenet").normalization == "standardize"
    assert Hparams.paper("conv2").normalization == "scale"
    path = write_preset(tmp_path, "architectures: {conv2: {datasets: [cifar10, mnist]}}\n")
    assert resolve("conv2", "mnist", preset=path).normalization == "standardize"
    assert resolve("conv2", preset=path).normalization == "scale"
    assert resolve("lenet", normalization="scale").normalization == "scale"
    pinned = write_preset(tmp_path, "normalization: scale\n")
    assert resolve("lenet", preset=pinned).normalization == "scale"


def test_load_splits_checks_its_normalization_as_the_parameters_do(tmp_path):
    """The library's entry point refuses an unknown normalization with the message a preset's
    gets, before it looks for the data (tmp_path holds none)."""
    from lth_utils.data import load_splits
    with pytest.raises(LTHError, match=r"^unknown normalization 'off'; choose one of "
                                       r"standardize, scale$"):
        load_splits("mnist", tmp_path, normalization="off")


def test_science_leaves_out_bookkeeping():
    hp = resolve("lenet", preset="smoke")
    science = hp.science()
    assert {"preset", "trials", "strategies", "datasets"}.isdisjoint(science)
    assert science["learning_rate"] == 1.2e-3 and science["iterations"] == 200
    again = Hparams(**hp.to_dict())
    assert again == hp


# --- strict types: no YAML 1.1 surprises --------------------------------------------------------

@pytest.mark.parametrize("text, field", [
    ("prune_rate_fc: off\n", "prune_rate_fc"),      # YAML 1.1 would read a boolean
    ("learning_rate: yes\n", "learning_rate"),
    ("trials: true\n", "trials"),                   # a boolean is never a number
    ("normalization: true\n", "normalization"),     # ... nor a string
    ("trials: 2.0\n", "trials"),                    # integer fields take integers only
    ("rounds: 1.0\n", "rounds"),
    ("learning_rate: '0.001'\n", "learning_rate"),  # a string is never a number
    ("iterations: '100'\n", "iterations"),
    ("learning_rate: .nan\n", "learning_rate"),     # numbers are finite
    ("learning_rate: .inf\n", "learning_rate"),
    ("prune_rate_conv: -.inf\n", "prune_rate_conv"),
    (f"learning_rate: {10 ** 400}\n", "learning_rate"),
    ("strategies: [winning_ticket, 3]\n", "strategies[1]"),
    ("datasets: mnist\n", "datasets"),
    ("seed: null\n", "seed"),
])
def test_strict_types(tmp_path, text, field):
    with pytest.raises(LTHError, match=rf"^{re.escape(field)} must be ") as e:
        resolve("lenet", preset=write_preset(tmp_path, text))
    assert "\n" not in str(e.value)


def test_yaml_numbers_read_as_written(tmp_path):
    """Presets are read with YAML 1.2 core scalars: 1e-3 is a number, 010 is ten, 0 a float
    where a float is due."""
    hp = resolve("lenet", preset=write_preset(
        tmp_path, "learning_rate: 1e-3\niterations: 010\neval_every: 1_000\nprune_rate_conv: 0\n"))
    assert hp.learning_rate == 1e-3 and isinstance(hp.learning_rate, float)
    assert (hp.iterations, hp.eval_every) == (10, 1000)
    assert hp.prune_rate_conv == 0.0 and isinstance(hp.prune_rate_conv, float)


def test_hparams_errors_are_lth_errors_never_pydantic():
    base = Hparams.paper("lenet").to_dict()
    for bad in [{"trials": "5"}, {"iterations": None}, {"learning_rate": float("nan")},
                {"colour": "red"}, {"batch_size": True, "trials": 1.5}]:
        with pytest.raises(LTHError) as e:
            Hparams(**{**base, **bad})
        assert "\n" not in str(e.value) and next(iter(bad)) in str(e.value)
    with pytest.raises(LTHError, match="batch_size must be an integer.*; trials must be an "):
        Hparams(**{**base, "trials": 1.5, "batch_size": True})  # every type error, one line
    with pytest.raises(LTHError, match="dataset is missing"):
        Hparams(**{k: v for k, v in base.items() if k != "dataset"})
    with pytest.raises(LTHError, match="trials must be at least 1"):  # replace validates too
        dataclasses.replace(Hparams.paper("lenet"), trials=0)


def test_frozen_hashable_and_old_params_files_read_back():
    hp = Hparams.paper("lenet")
    with pytest.raises(dataclasses.FrozenInstanceError):
        hp.trials = 3
    assert hash(hp) == hash(Hparams.paper("lenet")) and len({hp, Hparams.paper("lenet")}) == 1
    d = hp.to_dict()
    assert isinstance(d["strategies"], list) and isinstance(d["datasets"], list)
    assert list(d) == [f.name for f in dataclasses.fields(Hparams)]
    # params.yaml as written before this validation existed (the committed standardized run)
    recorded = yaml.safe_load((REPO / "results" / "lenet_mnist_paper_standardize" /
                               "params.yaml").read_text())["hparams"]
    hp = dataclasses.replace(hp, preset="paper_standardize", normalization="standardize")
    assert Hparams(**recorded) == hp and Hparams(**recorded).to_dict() == recorded


def test_annotations_are_postponed_in_config():
    """Validation must not depend on the annotations being real types at class creation."""
    from lth_utils import config
    assert config.Hparams.__annotations__["trials"] == "int"  # a string: postponed
    with pytest.raises(LTHError, match="trials must be an integer"):
        Hparams(**{**Hparams.paper("lenet").to_dict(), "trials": "5"})


# --- cross-field rules ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, arch, message", [
    ("batch_size: 55001\n", "lenet", "batch_size must fit in the training split: at most 55000"),
    ("batch_size: 45001\n", "conv2", "at most 45000 (cifar10's 50000"),
    ("validation_size: 59000\nbatch_size: 1001\n", "lenet", "at most 1000"),
    ("validation_size: 60000\n", "lenet", "validation_size must leave training examples"),
    ("eval_limit: -1\n", "lenet", "eval_limit must be at least 0"),
    ("rounds: -1\n", "lenet", "rounds must be at least 0"),
    ("prune_rate_output: 0.9\n", "lenet", "rounds must be at most 3 with these rates: round 4 "
                                          "would prune lenet's output layer"),
    ("prune_rate_conv: 0.99\nrounds: 5\n", "conv2", "round 2 would prune conv2's conv layer"),
    ("strategies: [oneshot, oneshot]\n", "lenet", "oneshot more than once"),
    ("datasets: [mnist, svhn]\n", "lenet", "unknown dataset 'svhn'"),
    ("precision: fp8\n", "lenet", "unknown precision 'fp8'; choose one of float32"),
    ("normalization: off\n", "lenet", "unknown normalization 'off'; choose one of"),
])
def test_cross_field_rules(tmp_path, text, arch, message):
    with pytest.raises(LTHError, match=re.escape(message)):
        resolve(arch, preset=write_preset(tmp_path, text))


def test_cross_field_limits_are_inclusive(tmp_path):
    assert resolve("lenet", preset=write_preset(tmp_path, "batch_size: 55000\n")).batch_size \
        == 55000
    hp = resolve("lenet", preset=write_preset(tmp_path, "prune_rate_output: 0.9\nrounds: 3\n"))
    assert hp.rounds == 3  # 1000 -> 100 -> 10 -> 1 weights in the output layer
    # a rate that never empties a layer allows any number of rounds (checked in no time)
    assert resolve("lenet", preset=write_preset(tmp_path, "rounds: 1000000000\n")).rounds


@pytest.mark.parametrize("arch, dataset", [(a, d) for a in ARCHS for d in ("mnist", "cifar10")])
def test_prunable_layers_match_the_models(arch, dataset):
    from lth_utils.models import LotteryNet
    model = LotteryNet(arch, dataset)
    kinds = model.layer_kinds()
    assert prunable_layers(arch, dataset) == {
        name: (kinds[name], w.numel()) for name, w in model.weights().items()}


# --- where the presets are ---------------------------------------------------------------------

def test_presets_and_claims_are_found():
    assert (PRESETS_DIR / "paper.yaml").is_file() and CLAIMS_FILE.is_file()
    assert CLAIMS_FILE.parent == PRESETS_DIR


# --- property: any preset either validates or is one LTHError line -----------------------------

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 300), st.integers(-10 ** 30, 10 ** 30),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1), st.text(max_size=8),
    st.sampled_from(["paper", "mnist", "cifar10", "winning_ticket", "rewind", "float32",
                     "scale", "lenet"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
KEYS = st.sampled_from(sorted(OVERRIDABLE) + ["description", "arch", "dataset", "preset",
                                              "learnig_rate", "architectures"])
RAW = st.sampled_from(["off", "on", "yes", "no", "true", "~", "", "1e-3", ".nan", "-.inf",
                       "0x10", "010", "1_000", "2.0", "55001", "[a, b]", "{a: 1}", "'1'",
                       "[winning_ticket, oneshot]", "0.5", "1", "- x"])
PLAUSIBLE = st.fixed_dictionaries({}, optional={  # values that pass, so that both outcomes occur
    "iterations": st.integers(1, 300), "learning_rate": st.floats(1e-5, 0.1),
    "batch_size": st.integers(1, 100), "rounds": st.integers(0, 5),
    "prune_rate_fc": st.floats(0, 0.5), "prune_rate_output": st.floats(0, 0.5),
    "trials": st.integers(1, 3), "eval_every": st.integers(1, 100),
    "strategies": st.lists(st.sampled_from(STRATEGIES), min_size=1, max_size=3, unique=True),
    "eval_limit": st.integers(0, 1000), "validation_size": st.integers(1, 10_000),
    "normalization": st.sampled_from(["standardize", "scale"]),
    "precision": st.sampled_from(["float32", "tf32", "bfloat16"]), "seed": st.integers()})
PRESET_TEXT = st.builds(
    lambda plausible, values, raw, per_arch: yaml.safe_dump({**plausible, **values}) + "".join(
        f"{k}: {v}\n" for k, v in raw.items()) + (yaml.safe_dump({"architectures": per_arch})
                                                  if per_arch is not None else ""),
    PLAUSIBLE,
    st.dictionaries(KEYS, VALUES, max_size=2),
    st.dictionaries(KEYS, RAW, max_size=2),
    st.none() | st.dictionaries(st.sampled_from(ARCHS + ["lenet5"]),
                                st.dictionaries(KEYS, VALUES, max_size=2) | VALUES, max_size=2))


@settings(max_examples=150, deadline=None)
@given(text=PRESET_TEXT, arch=st.sampled_from(ARCHS))
def test_any_preset_validates_or_is_one_error_line(text, arch):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.yaml"
        path.write_text(text)
        try:
            hp = resolve(arch, preset=str(path))
        except LTHError as e:
            assert len(str(e).splitlines()) == 1, str(e)
            event("refused")
        else:
            event("valid")
            assert isinstance(hp, Hparams) and hp.arch == arch
            assert Hparams(**hp.to_dict()) == hp and hash(hp) == hash(Hparams(**hp.to_dict()))
