"""The buckets the hot path sorts every incoming message into.

:class:`Kind` and :class:`Lane` are ``IntEnum`` classes whose values are the C enums of
``_classify.pxd`` (the ones the compiled classifier and listener use), given their names
once in the compiled ``drbfast._kinds``; this module is where the rest of drbfast and
its users import them from. Nothing here or in Python code renumbers them.
"""

from __future__ import annotations

from ._kinds import Kind, Lane

__all__ = ["Kind", "Lane"]
