"""The Transformer's vocabulary: the 310 performance tokens of :mod:`capsule_lib.performance`.

The encoder and decoder live below the techniques because the classical data set is
stored as these tokens (:mod:`capsule_lib.datasets.classical`) and a data layer must not
import a technique.  The Transformer reads and writes exactly those tokens; this module
gives them the technique's own name (``tokens.encode``, ``tokens.VOCAB_SIZE``, ...).
"""

from ...performance import *  # noqa: F403 -- the whole vocabulary, under the technique's name
from ...performance import __all__  # noqa: F401
