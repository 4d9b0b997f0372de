"""The sizing rule: what a room is expected to cost, and which node has room for it.

Costs are cores per publishing member, from the measured runs (bench/README.md, the
deployment guide's sizing section, 2-core machine): a blurred publisher in a room of 12 costs
~0.11 core (1.27 cores for 12); a face-masked one ~0.32 (5 masked: 1.58 cores; it runs both
face detectors on every frame); an avatar ~0.14 (10: 1.43 cores); forwarded video ~0.035 core
(a whole room of 12 forwarded, ~0.4 core). Camera-off is not measured yet: it is counted as
one encode of a still card.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from confidentiality.profiles import Profile

from .models import NodeInfo

PROFILE_CORES: dict[Profile, float] = {
    Profile.NONE: 0.035,
    Profile.BLUR: 0.11,
    Profile.FACE_MASK: 0.32,
    Profile.AVATAR: 0.14,
    Profile.CAMERA_OFF: 0.02,
}


def expected_cost(members: int, profile: Profile) -> float:
    """A room's expected cores: members × the profile's measured cost."""
    return round(max(members, 1) * PROFILE_CORES[profile], 3)


def load_of(publishers: Mapping[str, int]) -> float:
    """Expected cores of the publishers a node is running, by profile."""
    total = 0.0
    for name, count in publishers.items():
        try:
            total += count * PROFILE_CORES[Profile(name)]
        except ValueError:
            continue
    return round(total, 3)


def headroom(node: NodeInfo, reserved_cores: float) -> float:
    """Cores left on `node`: its cores less what it runs or has been given, whichever is more
    (a room placed but not yet full counts at its expected cost)."""
    return node.cores - max(node.load_cores, reserved_cores)


def choose(nodes: Iterable[NodeInfo], reserved: Mapping[str, float]) -> NodeInfo | None:
    """The node with the most headroom (fewest rooms, then id, on a tie); never a draining
    one."""
    open_nodes = [n for n in nodes if not n.draining]
    if not open_nodes:
        return None
    return max(
        open_nodes,
        key=lambda n: (round(headroom(n, reserved.get(n.node_id, 0.0)), 3), -len(n.rooms),
                       _neg(n.node_id)),
    )


def _neg(node_id: str) -> tuple[int, ...]:
    # ties go to the smallest id, the same on every node
    return tuple(-ord(c) for c in node_id)
