"""The data key ring: the keys that encrypt real names and contact details at rest.

A key file holds one key per line, `<key id> <key>`. The first line is the key new values
are written with; the lines after it are older keys, kept only until
`confide admin rotate-data-key` has re-encrypted every value written with them. Each stored
value starts with the id of its key (`k2:...`), so a value is always read with its own key.

A file holding a single bare key (the format before key ids) is that key under the id "v1",
the prefix values written with it carry; so is a key given directly in CONFIDE_DATA_KEY.

The file may live outside the data dir (CONFIDE_DATA_KEY_FILE), so that a copy of the
database or of its backups does not carry the key that opens it.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .errors import StoreError

LEGACY_KEY_ID = "v1"
_KEY_ID = re.compile(r"^[a-z][a-z0-9]{0,15}$")


class KeyFileError(StoreError):
    code = "data_key_error"


@dataclass(frozen=True)
class Keyring:
    """Key id → key; `primary` writes, every key reads."""

    primary: str
    keys: dict[str, str]

    def __post_init__(self) -> None:
        if self.primary not in self.keys:
            raise KeyFileError("the key ring has no primary key")

    @property
    def retired(self) -> list[str]:
        """Ids of the older keys (still needed to read some values)."""
        return [k for k in self.keys if k != self.primary]

    def with_new_primary(self) -> Keyring:
        """This ring with a fresh key in front; the old ones stay until values move."""
        numbers = [int(k[1:]) for k in self.keys if re.fullmatch(r"k\d+", k)]
        new_id = f"k{max(numbers, default=0) + 1}"
        return Keyring(new_id, {new_id: new_key(), **self.keys})

    def only_primary(self) -> Keyring:
        return Keyring(self.primary, {self.primary: self.keys[self.primary]})

    def dump(self) -> str:
        ordered = [self.primary, *self.retired]
        return "".join(f"{kid} {self.keys[kid]}\n" for kid in ordered)


def new_key() -> str:
    """A fresh random key (256 bits)."""
    return secrets.token_urlsafe(32)


def parse(text: str, *, name: str = "data key file") -> Keyring:
    """The ring a key file holds (see the module docstring)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise KeyFileError(f"the {name} is empty")
    if len(lines) == 1 and " " not in lines[0]:
        return Keyring(LEGACY_KEY_ID, {LEGACY_KEY_ID: lines[0]})
    keys: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        kid, _, key = line.partition(" ")
        key = key.strip()
        if not _KEY_ID.fullmatch(kid) or not key or " " in key:
            raise KeyFileError(f"the {name}: line {number} is not '<key id> <key>'")
        if kid in keys:
            raise KeyFileError(f"the {name}: key id {kid} appears twice")
        keys[kid] = key
    return Keyring(next(iter(keys)), keys)


def read_key_file(path: Path) -> Keyring:
    """The ring in `path`."""
    try:
        return parse(path.read_text(encoding="utf-8"), name=f"data key file {path.name}")
    except OSError as exc:
        raise KeyFileError(
            f"cannot read the data key file {path.name}: {exc.strerror or 'error'}"
        ) from None


def write_key_file(path: Path, ring: Keyring) -> None:
    """Replace the file atomically, owner-only: a crash leaves the old ring or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(ring.dump())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # the rename is only durable once the directory is
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def ensure_key_file(path: Path) -> None:
    """Create the key file with one fresh key, owner-only, if it does not exist yet."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process made it first
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(Keyring("k1", {"k1": new_key()}).dump())


class KeySource(Protocol):
    def current(self) -> Keyring: ...


class FixedKeys:
    """A ring that never changes (a key given in the environment, tests)."""

    def __init__(self, ring: Keyring) -> None:
        self._ring = ring

    def current(self) -> Keyring:
        return self._ring


class KeyFile:
    """The ring in a file, read again whenever the file changes: a rotation run beside the
    service makes the service write with the new key from its next value on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._ring: Keyring | None = None

    def current(self) -> Keyring:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            if self._ring is not None:
                return self._ring  # keep working if the file is briefly unavailable
            raise KeyFileError(
                f"cannot read the data key file {self.path.name}: {exc.strerror or 'error'}"
            ) from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._ring is None or stamp != self._seen:
                self._ring = read_key_file(self.path)
                self._seen = stamp
            return self._ring


def key_source(data_key: str | Keyring | KeySource, key_file: Path | None = None) -> KeySource:
    """The source for a store: a key given directly, a ring, or the key file."""
    if isinstance(data_key, Keyring):
        return FixedKeys(data_key)
    if isinstance(data_key, str):
        if data_key:
            return FixedKeys(Keyring(LEGACY_KEY_ID, {LEGACY_KEY_ID: data_key}))
        if key_file is None:
            raise KeyFileError("a data key is required to store real names")
        return KeyFile(key_file)
    return data_key
