"""The nodes' API on a service that runs as one node: an honest empty answer, admins only."""

from __future__ import annotations

from web.store import accounts

from .conftest import PASSWORD, Api


async def test_one_node_lists_no_cluster_and_refuses_a_drain(api: Api) -> None:
    await api.store.run(accounts.create_user, username="it.admin", role="admin",
                        password=PASSWORD)
    await api.store.run(accounts.create_user, username="dr.lane", role="clinician",
                        password=PASSWORD)
    csrf = await api.login("dr.lane")
    status, body = await api.call("GET", "/api/v1/nodes", csrf)
    assert status == 403, body
    api.client.session.cookie_jar.clear()
    csrf = await api.login("it.admin")
    assert await api.call("GET", "/api/v1/nodes", csrf) == (200, {"clustered": False,
                                                                  "nodes": []})
    status, body = await api.call("POST", "/api/v1/nodes/n1/drain", csrf, json={})
    assert status == 409 and body["error"]["code"] == "not_clustered", body
