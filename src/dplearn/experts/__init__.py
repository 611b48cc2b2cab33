"""Experts that demonstrate tasks: the scripted Push-T expert and the pushing mechanics it uses.

Introduced in chapter 5.

- :mod:`dplearn.experts.pushing`: quasi-static pushing of the T by a disc: candidate contacts,
  the twist of each push, paths around the block;
- :mod:`dplearn.experts.pusht`: :class:`PushTExpert` (``expert(obs) -> action``),
  :func:`rollout_expert` (one episode from a given start), :func:`plot_expert_routes` (the
  expert's different routes from one start).
"""

from dplearn.experts.pushing import (
    T_OUTLINE,
    Contacts,
    contact_candidates,
    distance_to_t,
    offset_contour,
    push_twist,
)
from dplearn.experts.pusht import (
    ROUTES_START_STATE,
    PushTExpert,
    plot_expert_routes,
    rollout_expert,
)

__all__ = [
    "PushTExpert",
    "rollout_expert",
    "plot_expert_routes",
    "ROUTES_START_STATE",
    "T_OUTLINE",
    "Contacts",
    "contact_candidates",
    "distance_to_t",
    "offset_contour",
    "push_twist",
]
