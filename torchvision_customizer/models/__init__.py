"""Model-level protocol shared by every model this library returns.

* :class:`ModelSurface` (:mod:`.surface`): ``count_parameters``, ``explain``, ``summary``,
  ``forward_features``, ``get_stage_outputs`` with declared ``stage_channels``/``stage_strides``,
  ``get_classifier``/``reset_classifier``, ``freeze``/``freeze_backbone``/``unfreeze_all``,
  ``param_groups``, ``to_recipe`` and ``save``, for composed, recipe/template and hybrid models.

(The older release's v1 ``torchvision_customizer.models.CustomCNN`` was already gone in v2.1.1;
build the same networks with a recipe or ``Stem >> Stage >> Head``.)
"""

from __future__ import annotations

from .surface import BN_POLICIES, ModelSurface

__all__ = ["BN_POLICIES", "ModelSurface"]
