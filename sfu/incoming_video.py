"""Whether a subscriber receives others' video: off by their own choice (low data), or by the
server's while their downlink is too weak for it (audio first, see sfu/downlink.py);
honoured where the room fans out. Either turns it off; video comes back when neither holds.

Switching off detaches the subscriber's video slots from their publications: no packet is
queued or sent, while the transceivers stay, so switching back needs no renegotiation. A slot
switched back on waits for a keyframe, as any new subscriber does. Audio is never touched, and
the member's own picture (the self-view, what the group sees of them) keeps coming.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .participant import Participant, Subscription
    from .publication import Publication

# points a slot back at a publication: the room's own choice of stream for that subscriber
# (a host may receive the clinician's view of a member, sfu/host_copy.py)
Attach = Callable[["Subscription", "Publication"], None]

# participants who asked for no incoming video; weak, so a participant who goes is forgotten
_VIDEO_OFF: weakref.WeakSet[Participant] = weakref.WeakSet()
# participants whose downlink cannot carry it for now (the server's decision)
_LINK_WEAK: weakref.WeakSet[Participant] = weakref.WeakSet()


def wants_video(subscriber: Participant) -> bool:
    """True unless the subscriber switched incoming video off or their link is too weak."""
    return subscriber not in _VIDEO_OFF and subscriber not in _LINK_WEAK


def link_weak(subscriber: Participant) -> bool:
    return subscriber in _LINK_WEAK


def _from_others(subscriber: Participant, sub: Subscription) -> bool:
    return sub.track.kind == "video" and sub.publisher_id not in (None, subscriber.id)


def honour(subscriber: Participant, sub: Subscription) -> None:
    """Called as a slot is attached: keep it idle if this subscriber wants no video."""
    if not wants_video(subscriber) and _from_others(subscriber, sub):
        sub.track.detach()


def set_incoming_video(
    subscriber: Participant, enabled: bool, publications: dict[str, Publication],
    attach: Attach,
) -> int:
    """The subscriber's own switch; returns the slots changed.

    `publications` maps publication id to the room's open publications, to re-attach slots.
    """
    if enabled:
        _VIDEO_OFF.discard(subscriber)
    else:
        _VIDEO_OFF.add(subscriber)
    return _apply(subscriber, publications, attach)


def set_link_weak(
    subscriber: Participant, weak: bool, publications: dict[str, Publication],
    attach: Attach,
) -> int:
    """The server's audio-first decision for this subscriber; returns the slots changed."""
    if weak:
        _LINK_WEAK.add(subscriber)
    else:
        _LINK_WEAK.discard(subscriber)
    return _apply(subscriber, publications, attach)


def _apply(subscriber: Participant, publications: dict[str, Publication],
           attach: Attach) -> int:
    changed = 0
    if wants_video(subscriber):
        for sub in subscriber.subscriptions:
            pub = publications.get(sub.publication_id or "")
            if _from_others(subscriber, sub) and pub is not None and sub.track.fanout is None:
                attach(sub, pub)
                changed += 1
    else:
        for sub in subscriber.subscriptions:
            if _from_others(subscriber, sub) and sub.track.fanout is not None:
                sub.track.detach()
                changed += 1
    return changed
