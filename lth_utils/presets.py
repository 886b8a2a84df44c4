"""The presets (params/*.yaml) that set an experiment's hyperparameters, and `resolve`.

A preset overrides only what it changes of the paper's `Hparams` (config.py), at its top level
for every architecture or under `architectures: {lenet: {...}}` for one; `resolve` takes the
paper's values, then a preset's, then the command line's. Presets are read as YAML with the 1.2
core schema's scalars: `true`/`false` are the only booleans (`yes`, `off` are strings) and
`1e-3` is a number. The presets ship inside the package (params/ is mapped to
lth_utils/params), beside the paper's claims file, claims.yaml.

This module imports no torch: the command line's --help lists the presets without it.
"""
from __future__ import annotations

import dataclasses
import importlib.resources
import os
import re
from pathlib import Path

import yaml

from . import paper
from .config import OVERRIDABLE, Hparams
from .errors import LTHError


def _presets_dir() -> Path:
    """params/ beside the package in a source checkout (also an editable install), else the
    copy shipped inside the installed package as lth_utils/params/ (package data)."""
    checkout = Path(__file__).resolve().parent.parent / "params"
    if (checkout / "paper.yaml").is_file() and (checkout / "claims.yaml").is_file():
        return checkout
    try:  # a regular package on the file system: a real path
        return Path(os.fspath(importlib.resources.files(__package__).joinpath("params")))
    except TypeError:  # not on the file system (a zip): not supported, say where it looked
        return Path(__file__).resolve().parent / "params"


PRESETS_DIR = _presets_dir()
CLAIMS_FILE = PRESETS_DIR / "claims.yaml"  # the paper's claims (lth_utils.claims), not a preset


class PresetLoader(yaml.SafeLoader):
    """YAML with the 1.2 core schema's scalars: booleans are true/false only, 1e-3 is a float,
    010 is ten; everything else (yes, no, on, off, ...) is a string."""


PresetLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
                           "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
PresetLoader.add_implicit_resolver("tag:yaml.org,2002:bool",
                                   re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                   list("tTfF"))
PresetLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789"))
PresetLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))
PresetLoader.add_constructor(
    "tag:yaml.org,2002:bool",
    lambda loader, node: loader.construct_scalar(node).lower() == "true")


def _construct_int(loader, node):
    text = loader.construct_scalar(node).replace("_", "")
    if text[:2] in ("0o", "0x"):
        return int(text, 0)
    return int(text, 10)


PresetLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def available_presets() -> list:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml") if p != CLAIMS_FILE)


def read_preset(name_or_path: str) -> dict:
    """A preset by name (params/NAME.yaml) or path, checked for unknown keys."""
    path = Path(name_or_path)
    named = path.suffix not in (".yaml", ".yml")
    if named:
        path = PRESETS_DIR / f"{name_or_path}.yaml"
    if (named and not path.is_file()) or path.resolve() == CLAIMS_FILE.resolve():
        raise LTHError(f"unknown preset {name_or_path!r}; choose one of "
                       f"{', '.join(available_presets())} or give a .yaml path")
    if not path.is_file():
        raise LTHError(f"preset file {path} does not exist")
    try:
        preset = yaml.load(path.read_text(), Loader=PresetLoader) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise LTHError(f"preset {path} is not valid YAML{where}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise LTHError(f"preset {path} cannot be read ({e.__class__.__name__})") from None
    if not isinstance(preset, dict):
        raise LTHError(f"preset {path} must be a mapping of keys to values")
    per_arch = preset.get("architectures", {}) or {}
    if not isinstance(per_arch, dict):
        raise LTHError(f"preset {path}: 'architectures' must map architecture names to keys")
    for scope, keys in [("", preset), *[(f"architectures.{a}.", v) for a, v in per_arch.items()]]:
        name = scope[len("architectures."):-1]
        if scope and name not in paper.FIGURE_2:
            raise LTHError(f"preset {path}: unknown architecture {name!r}; "
                           f"choose one of {', '.join(paper.FIGURE_2)}")
        if not isinstance(keys, dict):
            raise LTHError(f"preset {path}: {scope[:-1] or 'top level'} must be a mapping")
        allowed = OVERRIDABLE | ({"description", "architectures"} if not scope else set())
        for key in keys:
            if key not in allowed:
                shown = key if isinstance(key, str) and key.isidentifier() else repr(key)
                raise LTHError(f"preset {path}: unknown key {scope}{shown}; known keys: "
                               f"{', '.join(sorted(allowed))}")
    return preset


def resolve(arch: str = "lenet", dataset: str | None = None, preset: str = "paper",
            **overrides) -> Hparams:
    """The paper's hyperparameters for `arch`, then `preset`'s changes, then `overrides`
    (None: not given). Everything is checked here, before anything is written."""
    base = Hparams.paper(arch)
    values = read_preset(preset)
    per_arch = (values.pop("architectures", None) or {}).get(arch, {}) or {}
    values.pop("description", None)
    values.update(per_arch)
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(str(k) for k in set(values) - OVERRIDABLE)
    if unknown:
        raise LTHError(f"unknown parameter {unknown[0]!r}; known: "
                       f"{', '.join(sorted(OVERRIDABLE))}")
    dataset = dataset or base.dataset
    return dataclasses.replace(base, dataset=dataset, preset=Path(preset).stem,
                               **{"normalization": paper.normalization(dataset), **values})
