"""Client messages become typed models or typed errors; nothing else reaches the logic."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest

from confidentiality.profiles import Profile
from session_rules.commands import COMMAND_NAMES, WIRE_COMMAND_NAMES, Command
from web.signaling.commands import WireCommand
from web.signaling.messages import CommandMessage, Join, Mute, Ping, WireError, parse


def _refused(message: Any) -> WireError:
    text = message if isinstance(message, str) else json.dumps(message)
    # a nested value written as text (see the depth cases) is spliced in as JSON
    text = text.replace('"[[', "[[").replace(']]"', "]]")
    with pytest.raises(WireError) as err:
        parse(text)
    return err.value


def test_the_wire_offers_exactly_the_commands_meant_for_it() -> None:
    names: set[str] = set()
    for model in get_args(get_args(WireCommand)[0]):
        names |= set(get_args(model.model_fields["name"].annotation))
    assert names == set(WIRE_COMMAND_NAMES)
    assert {"leave", "publish_media"} == COMMAND_NAMES - names


@pytest.mark.parametrize(
    ("message", "code", "field"),
    [
        ("{not json", "bad_json", None),
        ("[1, 2]", "bad_message", None),
        ('"\\ud800"', "bad_json", None),
        ("[" * 5000 + "]" * 5000, "too_deep", None),
        ({"type": "ping", "ts": "[" * 40 + "1" + "]" * 40}, "too_deep", None),
        ({"type": 5}, "bad_message", None),
        ({"type": "teleport"}, "unknown_type", None),
        ({"type": "ping", "pad": 1}, "unknown_field", "pad"),
        ({"type": "publish_offer"}, "bad_field", "sdp"),
        ({"type": "publish_offer", "sdp": 12}, "bad_field", "sdp"),
        ({"type": "mute", "kind": "video", "muted": "yes"}, "bad_field", "muted"),
        ({"type": "mute", "kind": "screen", "muted": True}, "bad_field", "kind"),
        ({"type": "ping", "id": True}, "bad_field", "id"),
        ({"type": "ping", "v": 2}, "bad_field", "v"),
        ({"type": "join", "grant": 7}, "bad_field", "grant"),
        # commands: refused as invalid_command (the code clients know), naming the field
        ({"type": "command"}, "invalid_command", "name"),
        ({"type": "command", "name": "launch_missiles"}, "invalid_command", "name"),
        ({"type": "command", "name": "leave"}, "invalid_command", "name"),
        ({"type": "command", "name": "publish_media", "media": "video"}, "invalid_command",
         "name"),
        ({"type": "command", "name": "chat", "text": 5}, "invalid_command", "text"),
        ({"type": "command", "name": "chat", "text": "hi", "to": "everyone"},
         "invalid_command", "to"),
        ({"type": "command", "name": "admit", "target": 7}, "invalid_command", "target"),
        ({"type": "command", "name": "admit"}, "invalid_command", "target"),
        ({"type": "command", "name": "set_own_profile", "profile": "nude"}, "invalid_command",
         "profile"),
        ({"type": "command", "name": "confirm_checklist", "answers": "all"}, "invalid_command",
         "answers"),
        ({"type": "command", "name": "set_text_only", "enabled": "yes"}, "invalid_command",
         "enabled"),
        ({"type": "command", "name": "set_clinician_consent"}, "invalid_command", "consent"),
        ({"type": "command", "name": "set_clinician_consent", "consent": "yes"},
         "invalid_command", "consent"),
        ({"type": "command", "name": "end", "as_host": True}, "invalid_command", "as_host"),
        ({"type": "command", "name": "end", "target": "p_1"}, "invalid_command", "target"),
        ({"type": "command", "name": "mute", "from": "p_host"}, "invalid_command", "from"),
    ],
)
def test_bad_messages_get_typed_errors(message: Any, code: str, field: str | None) -> None:
    err = _refused(message)
    assert (err.code, err.field) == (code, field), err.message


def test_the_request_id_comes_back_on_errors_when_usable() -> None:
    assert _refused({"type": "teleport", "id": 7}).ref == 7
    assert _refused({"type": "teleport", "id": "x" * 65}).ref is None
    assert _refused({"type": "command", "name": "nope", "id": "c1"}).ref == "c1"


def test_good_messages_become_typed_models() -> None:
    assert parse('{"type":"ping","ts":1.5,"v":1}') == Ping(type="ping", ts=1.5, v=1)
    assert isinstance(parse('{"type":"mute","kind":"audio","muted":true}'), Mute)
    join = parse('{"type":"join","grant":"g","v":1,"resume":"r"}')
    assert isinstance(join, Join) and (join.grant, join.resume) == ("g", "r")
    msg = parse(json.dumps({"type": "command", "name": "enforce_profile", "target": "m1",
                            "profile": "avatar", "id": 3}))
    assert isinstance(msg, CommandMessage) and msg.id == 3
    assert msg.command.to_command() == Command("enforce_profile", target="m1",
                                               profile=Profile.AVATAR)
    chat = parse('{"type":"command","name":"chat","text":"hi"}')
    assert isinstance(chat, CommandMessage)
    assert chat.command.to_command() == Command("chat", to="all", text="hi")
