"""The control plane's store: SQLAlchemy models, migrations and repository functions.

Repository functions take a `Tx` first and run inside one transaction:
`await store.run(groups.add_member, user, group_id, real_name=..., pseudonym=...)`.
"""

from .db import Store, Tx, open_store, utcnow

__all__ = ["Store", "Tx", "open_store", "utcnow"]
