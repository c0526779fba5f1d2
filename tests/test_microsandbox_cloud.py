"""The microsandbox emulator's stand-in for the cloud backend (hub
--cloud-key, tests/emulators/microsandbox_cloud.py): the REST lifecycle,
paging, error bodies and auth, and the agent WebSocket read through a small
RFC 6455 client (msb_emu.WsStream) that reassembles the stream the emulator
splits and coalesces at random.

Needs no FUSE mount, but root and bubblewrap (commands run in sandboxes).  Run:
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/test_microsandbox_cloud.py
"""

import http.client
import json
import os
import time
import urllib.parse
import urllib.request
import uuid

import pytest

from msb_emu import (Client, WsRefused, WsStream, api, cloud, connect_to_slot,  # noqa: F401
                     frame_ends, slot_of, spec, wait_for)


def test_cloud_auth_is_required(cloud):
    for key in (None, "wrong"):
        status, body = api(cloud, "GET", "/v1/sandboxes", key=key)
        assert status == 401 and body["code"] == "unauthorized" and body["message"]
        status, body = api(cloud, "POST", "/v1/sandboxes", spec("nokey"), key=key)
        assert status == 401
        with pytest.raises(WsRefused) as e:
            WsStream(cloud.port, "/v1/sandboxes/%s/agent" % uuid.uuid4(), key=key)
        assert e.value.args[0] == 401
    assert api(cloud, "GET", "/v1/sandboxes/by-name/nokey")[0] == 404
    assert cloud.stats().get("cloud.unauthorized", 0) >= 6


def test_cloud_lifecycle(cloud):
    status, sb = api(cloud, "POST", "/v1/sandboxes", spec(
        "Life_1", env=[{"key": "A", "value": "b=c"}], labels={"k": "v"},
        runtime={"workdir": "/tmp"}, future_field={"ignored": True}))
    assert status == 201, sb
    assert str(uuid.UUID(sb["id"])) == sb["id"] and uuid.UUID(sb["org_id"])
    assert (sb["name"], sb["slug"], sb["status"], sb["ephemeral"]) == \
        ("Life_1", "life-1", "created", False)
    assert sb["started_at"] is None and sb["stopped_at"] is None and sb["created_at"]
    assert sb["spec"]["env"] == [{"key": "A", "value": "b=c"}]
    assert sb["spec"]["labels"] == {"k": "v"}
    status, body = api(cloud, "POST", "/v1/sandboxes", spec("Life_1"))
    assert (status, body["code"]) == (409, "name_already_exists") and body["message"]
    ls = json.loads(cloud.msb("ls", "--format", "json").stdout)
    assert [r["name"] for r in ls] == ["Life_1"]      # an ordinary emulator sandbox
    assert api(cloud, "GET", "/v1/sandboxes/by-name/Life_1") == (200, sb)

    status, run = api(cloud, "POST", "/v1/sandboxes/by-name/Life_1/start"
                      "?wait_for=running&wait_timeout=30", {})
    assert (status, run["status"], run["id"]) == (200, "running", sb["id"])
    assert run["started_at"] and run["stopped_at"] is None
    assert cloud.control("GET", "/_emu/sandbox/Life_1")["status"] == "Running"
    again = api(cloud, "POST", "/v1/sandboxes/by-name/Life_1/start?wait_for=running", {})
    assert again == (200, run)                          # already running: no change
    status, stopped = api(cloud, "POST", "/v1/sandboxes/by-name/Life_1/stop", {})
    assert (status, stopped["status"]) == (200, "stopped")
    assert stopped["stopped_at"] >= stopped["started_at"]
    assert api(cloud, "POST", "/v1/sandboxes/by-name/Life_1/stop", {})[1]["status"] == \
        "stopped"
    status, body = api(cloud, "DELETE", "/v1/sandboxes/by-name/Life_1")
    assert status == 200 and set(body) == {"message"}
    for method, path in (("GET", ""), ("DELETE", ""), ("POST", "/start"),
                         ("POST", "/stop")):
        status, body = api(cloud, method, "/v1/sandboxes/by-name/Life_1" + path,
                           {} if method == "POST" else None)
        assert (status, body["code"]) == (404, "sandbox_not_found"), (method, path)
        assert "Life_1" in body["message"]

    # create-and-start in one go; DELETE of a running sandbox stops it
    status, sb = api(cloud, "POST", "/v1/sandboxes?start=true&wait_for=running"
                     "&wait_timeout=90", spec("life2"))
    assert (status, sb["status"]) == (201, "running") and sb["started_at"]
    pid = cloud.control("GET", "/_emu/sandbox/life2")["pid"]
    assert api(cloud, "DELETE", "/v1/sandboxes/by-name/life2")[0] == 200
    wait_for(lambda: not os.path.exists("/proc/%d" % pid), 10, "the sandbox to stop")
    assert api(cloud, "GET", "/v1/sandboxes")[1]["data"] == []


def test_cloud_start_without_waiting_and_failed_start(cloud):
    api(cloud, "POST", "/v1/sandboxes", spec("nowait"))
    status, sb = api(cloud, "POST", "/v1/sandboxes/by-name/nowait/start", {})
    assert status == 200 and sb["status"] in ("starting", "running")
    wait_for(lambda: api(cloud, "GET", "/v1/sandboxes/by-name/nowait")[1]["status"] ==
             "running", 20, "the sandbox to run")
    api(cloud, "DELETE", "/v1/sandboxes/by-name/nowait")
    cloud.fault(kind="crash", prefix="boot")
    status, body = api(cloud, "POST", "/v1/sandboxes?start=true&wait_for=running",
                       spec("crashy"))
    assert (status, body["code"]) == (502, "sandbox_start_failed")
    sb = api(cloud, "GET", "/v1/sandboxes/by-name/crashy")[1]
    assert sb["status"] == "failed" and "agent relay" in sb["last_failure_message"]
    assert api(cloud, "POST", "/v1/sandboxes/by-name/crashy/start?wait_for=running",
               {})[1]["status"] == "running"
    api(cloud, "DELETE", "/v1/sandboxes/by-name/crashy")


@pytest.mark.parametrize("body,status,code", [
    (b"{not json", 400, "invalid_request"),
    (b"[]", 400, "invalid_request"),
    (spec("v1", runtime={"workdir": "/", "hostname": "h"}), 400, "invalid_sandbox_config"),
    (spec("v2", resources={"vcpus": "two"}), 422, "invalid_request"),
    (spec("v3", image=None), 422, "invalid_request"),
    (spec("v4", image={"type": "bind", "path": "/nonexistent/dir"}), 400,
     "invalid_sandbox_config"),
    (spec("-bad name"), 400, "invalid_sandbox_config"),
    (spec("v5", env=[{"key": "A"}]), 422, "invalid_request"),
])
def test_cloud_create_refusals(cloud, body, status, code):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    got, answer = api(cloud, "POST", "/v1/sandboxes", raw=raw)
    assert (got, answer["code"]) == (status, code), answer
    assert api(cloud, "GET", "/v1/sandboxes")[1]["data"] == []


def test_cloud_list_paging_and_labels(cloud):
    names = ["pg%d" % i for i in range(5)]
    for n in names:
        assert api(cloud, "POST", "/v1/sandboxes", spec(
            n, labels={"grp": "odd" if n == "pg3" else "pg"}))[0] == 201
    try:
        seen, cursor, pages = [], None, 0
        while True:
            q = "/v1/sandboxes?limit=2" + ("&cursor=" + cursor if cursor else "")
            status, page = api(cloud, "GET", q)
            assert status == 200 and len(page["data"]) <= 2
            seen += [s["name"] for s in page["data"]]
            pages += 1
            cursor = page.get("next_cursor")
            if cursor is None:
                break
        assert (seen, pages) == (names, 3)
        assert [s["name"] for s in api(cloud, "GET", "/v1/sandboxes")[1]["data"]] == names
        q = urllib.parse.quote(json.dumps({"grp": "pg"}))
        status, page = api(cloud, "GET", "/v1/sandboxes?limit=3&labels=" + q)
        assert [s["name"] for s in page["data"]] == ["pg0", "pg1", "pg2"]
        page2 = api(cloud, "GET", "/v1/sandboxes?limit=3&labels=%s&cursor=%s"
                    % (q, page["next_cursor"]))[1]
        assert [s["name"] for s in page2["data"]] == ["pg4"] and "next_cursor" not in page2
        for bad in ("limit=0", "limit=x", "cursor=%%%", "labels=[1]"):
            status, body = api(cloud, "GET", "/v1/sandboxes?" + bad)
            assert (status, body["code"]) == (400, "invalid_request"), bad
    finally:
        for n in names:
            api(cloud, "DELETE", "/v1/sandboxes/by-name/" + n)


def test_cloud_agent_websocket(cloud):
    status, sb = api(cloud, "POST", "/v1/sandboxes?start=true&wait_for=running",
                     spec("wsbox", runtime={"workdir": "/tmp"}))
    assert status == 201, sb
    path = "/v1/sandboxes/%s/agent" % sb["id"]
    try:
        c = Client(None, sock=WsStream(cloud.port, path))
        slot_of(c)
        _, _, t, ready, v = c.ready
        assert (t, v) == ("core.ready", 7) and "agent_version" in ready
        c.sock.send_frame(1, b"text messages are ignored")
        out, err, code, _ = c.exec("echo", ["hi"])
        assert (out, err, code) == (b"hi\n", b"", 0)
        out, _, code, _ = c.exec("pwd")
        assert (out, code) == (b"/tmp\n", 0)
        assert c.ok("Stat", path="/tmp", follow_symlink=True)["Stat"]["kind"] == "dir"
        data = os.urandom(200000)
        c.write_file("/tmp/big", data)
        assert b"".join(c.read_file("/tmp/big")) == data

        # the bytes come back split and coalesced at random
        split = merged = tiny = False
        for _ in range(10):
            ids = [c.send("core.ping", {}) for _ in range(50)]
            for id_ in ids:
                assert c.reply(id_) == [(1, "core.pong", {})]
            fends = set(frame_ends(c.sock.data))
            ends = c.sock.ends
            split |= any(e not in fends for e in ends)
            merged |= any(sum(a < f < b for f in fends) >= 1 for a, b in zip(ends, ends[1:]))
            tiny |= any(b - a == 1 for a, b in zip([0] + ends, ends))
            if split and merged and tiny:
                break
        assert split and merged and tiny, (split, merged, tiny)

        # closing the WebSocket closes the relay connection: the slot comes free
        slot = slot_of(c)
        c.close()
        connect_to_slot(cloud.socket_path("wsbox"), slot).close()
        # stopping the sandbox closes the WebSocket
        c = Client(None, sock=WsStream(cloud.port, path))
        api(cloud, "POST", "/v1/sandboxes/by-name/wsbox/stop", {})
        assert c.closed_by_peer()
        c.close()
        with pytest.raises(WsRefused) as e:
            WsStream(cloud.port, path)
        assert e.value.args == (409, {"code": "sandbox_not_running",
                                      "message": "sandbox 'wsbox' is not running"})
        with pytest.raises(WsRefused) as e:
            WsStream(cloud.port, "/v1/sandboxes/%s/agent" % uuid.uuid4())
        assert e.value.args[0] == 404 and e.value.args[1]["code"] == "sandbox_not_found"
    finally:
        api(cloud, "DELETE", "/v1/sandboxes/by-name/wsbox")


def test_cloud_stats_and_faults(cloud):
    cloud.reset()
    api(cloud, "POST", "/v1/sandboxes", spec("flt"))
    try:
        cloud.fault(kind="error", prefix="cloud.get")
        assert api(cloud, "GET", "/v1/sandboxes/by-name/flt") == \
            (500, {"code": "internal", "message": "injected fault"})
        assert api(cloud, "GET", "/v1/sandboxes/by-name/flt")[0] == 200
        cloud.fault(kind="drop", prefix="cloud.list")
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            api(cloud, "GET", "/v1/sandboxes")
        cloud.fault(kind="slow", prefix="cloud.", delay=0.3)
        t0 = time.monotonic()
        assert api(cloud, "GET", "/v1/sandboxes")[0] == 200
        assert time.monotonic() - t0 >= 0.3
        cloud.fault(kind="error", prefix="cloud.agent")
        with pytest.raises(WsRefused) as e:
            WsStream(cloud.port, "/v1/sandboxes/%s/agent" % uuid.uuid4())
        assert e.value.args[0] == 500
    finally:
        api(cloud, "DELETE", "/v1/sandboxes/by-name/flt")
    stats = cloud.stats()
    for key, n in (("cloud.create", 1), ("cloud.get", 2), ("cloud.list", 2),
                   ("cloud.agent", 1), ("cloud.delete", 1)):
        assert stats[key] == n, stats
