"""Package metadata under the older release's top-level names (``__author__`` ... ``__url__``).

The values mirror ``pyproject.toml`` (a test compares them with the installed distribution's
metadata); ``__version__`` itself is single-sourced in ``_version.py``.
"""

from __future__ import annotations

from .._version import __version__

__all__ = ["__author__", "__author_email__", "__description__", "__license__", "__url__", "__version__"]

__author__ = "torchvision-customizer developers"
#: no e-mail address is published (the older release's was a placeholder)
__author_email__ = ""
__description__ = ("Customize pretrained torchvision models and build CNNs from blocks, without losing pretrained "
                   "knowledge.")
__license__ = "MIT"
__url__ = "https://github.com/torchvision-customizer/torchvision-customizer"
