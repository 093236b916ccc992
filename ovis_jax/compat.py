"""Drop-in replacements for the official OVIS / YouTube-VIS API classes.

Change one import::

    from pycocotools.ytvos import YTVOS          ->  from ovis_jax.compat import YTVOS
    from pycocotools.ytvoseval import YTVOSeval  ->  from ovis_jax.compat import YTVOSeval
    from pycocotools.ovis import OVIS            ->  from ovis_jax.compat import OVIS
    from pycocotools.oviseval import OVISeval    ->  from ovis_jax.compat import OVISeval

and the official call sequence (``YTVOS(path)``, ``loadRes``, ``YTVOSeval(gt, dt)``, changes to
``params``, ``evaluate()``, ``accumulate()``, ``summarize()``, ``stats``, ``eval``) gives the
official numbers, computed by :func:`ovis_jax.evaluate` (``backend=`` on the evaluator's
constructor picks the backend, ``"auto"`` by default). See the README, "Drop-in for the
official classes", for what is supported and what raises.
"""

from ovis_jax._src.compat.datasets import OVIS, YTVOS
from ovis_jax._src.compat.evaluators import OVISeval, OVISParams, Params, YTVOSeval

__all__ = ["OVIS", "YTVOS", "OVISParams", "OVISeval", "Params", "YTVOSeval"]
