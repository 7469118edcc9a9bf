"""State-dict key mapping between torchvision models and the equivalent templates.

Templates are recipes built by our builder, so their keys follow the composer's layout
(``stem.*``, ``stages.<i>.<j>.*``, ``head.*``) while the blocks inside keep torchvision's names
(``conv1``, ``bn1``, ``downsample.0`` ...). The documented mapping:

ResNet family (``resnet*``, ``wide_resnet*``, ``resnext*``)::

    conv1.*          <->  stem.conv.*
    bn1.*            <->  stem.bn.*
    layer<n>.<rest>  <->  stages.<n-1>.<rest>
    fc.*             <->  head.fc.*

DenseNet family (``densenet*``)::

    features.conv0.*            <->  stem.conv.*
    features.norm0.*            <->  stem.bn.*
    features.denseblock<n>.*    <->  stages.<n-1>.0.*
    features.transition<n>.*    <->  stages.<n-1>.transition.*
    features.norm5.*            <->  head.norm.*
    classifier.*                <->  head.fc.*

Every key of a torchvision state dict maps to exactly one template key; an unknown key is an
error naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from ..errors import WeightLoadingError

__all__ = [
    "KEY_MAPS",
    "template_state_dict_to_torchvision",
    "torchvision_state_dict_to_template",
]

_Rules = tuple[tuple[str, str, str, str], ...]  # (tv pattern, template repl, template pattern, tv repl)

_RESNET: _Rules = (
    (r"^conv1\.(.*)$", r"stem.conv.\1", r"^stem\.conv\.(.*)$", r"conv1.\1"),
    (r"^bn1\.(.*)$", r"stem.bn.\1", r"^stem\.bn\.(.*)$", r"bn1.\1"),
    (r"^layer(\d+)\.(.*)$", "STAGE", r"^stages\.(\d+)\.(.*)$", "LAYER"),
    (r"^fc\.(.*)$", r"head.fc.\1", r"^head\.fc\.(.*)$", r"fc.\1"),
)
_DENSENET: _Rules = (
    (r"^features\.conv0\.(.*)$", r"stem.conv.\1", r"^stem\.conv\.(.*)$", r"features.conv0.\1"),
    (r"^features\.norm0\.(.*)$", r"stem.bn.\1", r"^stem\.bn\.(.*)$", r"features.norm0.\1"),
    (r"^features\.denseblock(\d+)\.(.*)$", "DENSE", r"^stages\.(\d+)\.0\.(.*)$", "DENSEBLOCK"),
    (r"^features\.transition(\d+)\.(.*)$", "TRANS", r"^stages\.(\d+)\.transition\.(.*)$", "TRANSITION"),
    (r"^features\.norm5\.(.*)$", r"head.norm.\1", r"^head\.norm\.(.*)$", r"features.norm5.\1"),
    (r"^classifier\.(.*)$", r"head.fc.\1", r"^head\.fc\.(.*)$", r"classifier.\1"),
)

#: family -> rules; families are matched by template/torchvision name prefix
KEY_MAPS: dict[str, _Rules] = {"resnet": _RESNET, "wide_resnet": _RESNET, "resnext": _RESNET,
                               "densenet": _DENSENET}


def _rules(family: str) -> _Rules:
    for prefix, rules in sorted(KEY_MAPS.items(), key=lambda kv: -len(kv[0])):
        if family.startswith(prefix):
            return rules
    raise WeightLoadingError(f"no key mapping for {family!r}", where="templates.keymap",
                             expected="a family in " + ", ".join(sorted(KEY_MAPS)), got=family)


def _special(tag: str, m: re.Match[str]) -> str:
    n, rest = int(m.group(1)), m.group(2)
    if tag == "STAGE":
        return f"stages.{n - 1}.{rest}"
    if tag == "LAYER":
        return f"layer{n + 1}.{rest}"
    if tag == "DENSE":
        return f"stages.{n - 1}.0.{rest}"
    if tag == "DENSEBLOCK":
        return f"features.denseblock{n + 1}.{rest}"
    if tag == "TRANS":
        return f"stages.{n - 1}.transition.{rest}"
    return f"features.transition{n + 1}.{rest}"  # TRANSITION


def _convert(sd: Mapping[str, Any], rules: _Rules, forward: bool, family: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        for tv_pat, tpl_repl, tpl_pat, tv_repl in rules:
            pat, repl = (tv_pat, tpl_repl) if forward else (tpl_pat, tv_repl)
            m = re.match(pat, key)
            if m:
                new = _special(repl, m) if repl.isupper() else m.expand(repl)
                out[new] = value
                break
        else:
            side = "torchvision" if forward else "template"
            raise WeightLoadingError(f"key {key!r} has no {family} mapping", where=f"{side} state dict",
                                     expected="keys documented in torchvision_customizer.templates.keymap",
                                     got=key)
    return out


def torchvision_state_dict_to_template(state_dict: Mapping[str, Any], family: str = "resnet") -> dict[str, Any]:
    """Rename a torchvision ``resnet*``/``densenet*`` state dict to the template's keys.

    Example:
        >>> sd = torchvision.models.resnet18().state_dict()  # doctest: +SKIP
        >>> resnet(18).load_state_dict(torchvision_state_dict_to_template(sd))  # doctest: +SKIP
    """
    return _convert(state_dict, _rules(family), True, family)


def template_state_dict_to_torchvision(state_dict: Mapping[str, Any], family: str = "resnet") -> dict[str, Any]:
    """The inverse of :func:`torchvision_state_dict_to_template`."""
    return _convert(state_dict, _rules(family), False, family)
