"""What `confide admin ...` and `confide serve --demo` call."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from web.settings import Settings
from web.store import Store, accounts, groups, invites, open_store, safety, sessions
from web.store.db import Tx

DEMO_MEMBERS = (
    # (real name, pseudonym): the real names are invented and distinctive on purpose
    ("Araminta Quillfeather", "Robin"),
    ("Barnaby Thistlewood", "Wren"),
    ("Clementine Ashgrove", "Heron"),
)


@dataclass(frozen=True)
class DemoInfo:
    """What `serve --demo` prints once: logins and links are not stored in clear anywhere."""

    clinician_username: str
    clinician_password: str
    cso_username: str
    cso_password: str
    group_id: str
    session_id: str
    login_url: str
    # pseudonym -> invite link
    invite_links: dict[str, str] = field(default_factory=dict)
    # what the demo did about clinical safety (sign-off, workshop), to be shown with the logins
    safety_notes: list[str] = field(default_factory=list)


DEMO_WORKSHOP_ANSWER = (
    "Demo service only: recorded by the demo CSO so the demo session can open. A real "
    "service answers this in its own CSO-led hazard workshop."
)


def _demo_safety(tx: Tx, cso: accounts.UserInfo) -> list[str]:
    """Sign off the current hazard log and answer the workshop as the demo CSO, explicitly."""
    from web.safety.config import load_config
    from web.safety.errors import HazardLogUnreadable
    from web.safety.logfile import snapshot

    config = load_config()
    notes = []
    try:
        snap = snapshot(config)
    except HazardLogUnreadable as exc:
        notes.append(f"hazard log NOT signed off: {exc.message}")
    else:
        if snap.log.ok:
            safety.sign_off(
                tx, cso, content_hash=snap.hash, log_text=snap.text,
                comment="Demo sign-off by the demo CSO; not a clinical safety review.",
            )
            notes.append(
                f"the demo CSO signed off {snap.name} version {snap.hash[:12]} (demo only)"
            )
        else:
            notes.append(
                f"hazard log NOT signed off: {len(snap.log.issues)} problem(s); "
                "run `confide hazards check`"
            )
    for question in config.questions:
        safety.answer_workshop(
            tx, cso, question.id, DEMO_WORKSHOP_ANSWER, known_ids=config.question_ids
        )
    notes.append(
        f"the demo CSO answered the {len(config.questions)} hazard-workshop questions (demo only)"
    )
    notes.append("the clinician still confirms the host checklist before opening the lobby")
    return notes


def _store(settings: Settings) -> Store:
    from web.control import data_keys

    return open_store(settings.effective_database_url, data_keys(settings))


def create_user(settings: Settings, role: str, username: str, password: str) -> None:
    """Create an account; raises web.store.errors.StoreError (clear message, stable code)."""
    store = _store(settings)
    try:
        store.call(
            accounts.create_user, username=username, role=role, password=password, actor="cli"
        )
    finally:
        store.dispose()


def _seed(tx: Tx, base_url: str) -> DemoInfo | None:
    if accounts.count_users(tx) > 0:
        return None
    clinician_pw = secrets.token_urlsafe(12)
    cso_pw = secrets.token_urlsafe(12)
    clinician = accounts.create_user(
        tx,
        username="demo-clinician",
        role="clinician",
        password=clinician_pw,
        display_name="Demo Clinician",
        actor="demo",
    )
    cso = accounts.create_user(
        tx, username="demo-cso", role="cso", password=cso_pw, display_name="Demo CSO", actor="demo"
    )
    safety_notes = _demo_safety(tx, cso)
    # the measures Talking Therapies services collect at every session, anonymous feedback
    group = groups.create_group(tx, clinician, name="Tuesday CBT group (demo)",
                                rules={"measures": ["phq9", "gad7"], "feedback": "anonymous"})
    # numbers from the range Ofcom keeps for drama: nobody's real number
    members = [
        groups.add_member(tx, clinician, group.id, real_name=real, pseudonym=pseudo,
                          contact=f"07700 900{101 + i}",
                          emergency_contact=f"Next of kin, 07700 900{201 + i}")
        for i, (real, pseudo) in enumerate(DEMO_MEMBERS)
    ]
    session = sessions.schedule(
        tx, clinician, group.id, starts_at=tx.now.isoformat(), duration_min=60
    )
    links = {}
    for member in members:
        issued = invites.issue(tx, clinician, session.id, member.id)
        links[member.pseudonym] = f"{base_url.rstrip('/')}/i/{issued.token}"
    return DemoInfo(
        "demo-clinician",
        clinician_pw,
        "demo-cso",
        cso_pw,
        group.id,
        session.id,
        f"{base_url.rstrip('/')}/login",
        links,
        safety_notes,
    )


def seed_demo(settings: Settings) -> DemoInfo | None:
    """On an empty store: a demo clinician and CSO, a group of three, a session starting now
    and its links. On a store with any account: nothing, and None."""
    store = _store(settings)
    try:
        info = store.call(_seed, settings.base_url)
    finally:
        store.dispose()
    if info is not None:
        # said out loud: the demo's gate is open only because the demo CSO signed it off
        for note in info.safety_notes:
            print(f"clinical safety: {note}", flush=True)
    return info


def rotate_data_key(settings: Settings, *, batch_size: int = 100) -> str:
    """Re-encrypt every encrypted value (real names, contacts, measures, locations, feedback)
    under a new data key (or finish a rotation that was stopped); returns what was done."""
    from web.store.keyring import KeyFileError
    from web.store.rotation import rotate_data_key as rotate

    if settings.data_key:
        raise KeyFileError(
            "the data key is given in CONFIDE_DATA_KEY: a key in the environment cannot be "
            "rotated; move it to a key file (CONFIDE_DATA_KEY_FILE) first"
        )
    store = _store(settings)
    try:
        report = rotate(store, settings.key_file, batch_size=batch_size)
    finally:
        store.dispose()
    how = "finished the rotation to" if report.resumed else "rotated to"
    retired = ", ".join(report.retired) or "none"
    return (f"{how} data key {report.primary}: {report.rewrapped} values re-encrypted, "
            f"{report.values} under the new key; retired key(s): {retired}")


def backup(settings: Settings, out: Path) -> str:
    """A consistent backup of the database (encrypted values stay encrypted, no key)."""
    from web.store.backup import backup as make_backup

    store = _store(settings)
    try:
        report = make_backup(store, out)
    finally:
        store.dispose()
    return (f"backup {report.path}: schema {report.revision}, "
            f"{sum(report.rows.values())} rows in {len(report.rows)} tables")


def restore(settings: Settings, path: Path) -> str:
    """Load a backup into the configured (empty) database."""
    from web.control import data_keys
    from web.store.backup import restore as load

    store = Store(settings.effective_database_url, data_keys(settings))
    try:
        report = load(store, path)
    finally:
        store.dispose()
    return (f"restored {sum(report.rows.values())} rows into schema {report.revision}; "
            "every encrypted value opens with this data key")


def _user_id(tx: Tx, username: str) -> str:
    return accounts.find_user(tx, username).id


def set_disabled(settings: Settings, username: str, disabled: bool) -> None:
    """Disable (a leaver) or enable an account, audited as done from the command line."""
    store = _store(settings)
    try:
        user_id = store.call(_user_id, username)
        store.call(accounts.set_disabled, "cli", user_id, disabled)
    finally:
        store.dispose()


def reset_password(settings: Settings, username: str, password: str) -> None:
    """Set a new password for an account; its login sessions end."""
    store = _store(settings)
    try:
        user_id = store.call(_user_id, username)
        store.call(accounts.reset_password, "cli", user_id, password)
    finally:
        store.dispose()
