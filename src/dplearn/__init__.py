"""dplearn: Diffusion Policy from first principles.

The library behind the book. Layers (a module imports only from layers below it):

0. ``budget``, ``seeding``, ``viz``, ``distributed``
1. ``divergence``, ``diffusion``, ``envs``
2. ``nets``, ``data``, ``experts``
3. ``policies``
4. ``training``, ``evaluation``
5. ``cli``, ``exercises``
"""

from dplearn.budget import Budget, budget

__all__ = ["Budget", "budget", "__version__"]
__version__ = "0.1.0"
