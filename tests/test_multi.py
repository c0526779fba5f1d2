"""One tree for several providers: -o providers=local,daytona shows
MOUNT/local/ and MOUNT/daytona/, each as a mount of that provider alone
would, with its own ctl, status and err.  A provider that does not start
says why in its own err and status, and the others work."""

import errno
import os
import socket
import subprocess

import pytest

import conftest
import helpers
from helpers import parse_kv, wait_for

pytestmark = pytest.mark.skipif("local" not in conftest.PROVIDERS,
                                reason="several providers, with local among them")

DAYTONA_ENV = ("DAYTONA_API_URL", "DAYTONA_API_KEY", "DAYTONA_JWT_TOKEN",
               "DAYTONA_ORGANIZATION_ID")


@pytest.fixture
def daytona(tmp_path):
    emu = helpers.Emulator("daytona", tmp_path / "emu").start()
    yield emu
    emu.stop()


def mounted(tmp_path, opts, env=None):
    """A mount with -o opts and the daemon's environment `env` (the test's
    without the providers' credentials if None); started."""
    m = helpers.Mount(tmp_path / "mnt", tmp_path / "state", tmp_path / "sbxfs.log")
    # No -o provider=: it would beat the config file's providers.
    argv = [m.binary, "-f", "-o", "state_dir=" + m.state_dir]
    for o in opts:
        argv += ["-o", o]
    m.argv = lambda: argv + [m.path]
    os.makedirs(m.path, exist_ok=True)
    base = {k: v for k, v in os.environ.items() if k not in DAYTONA_ENV}
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(dict(base, **(env or {})))
    try:
        m.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return m


def daytona_env(emu):
    e = emu.env()
    return {k: e[k] for k in ("DAYTONA_API_URL", "DAYTONA_API_KEY")}


def new_box(tree, name):
    """A running sandbox `name` in the provider directory `tree`."""
    os.mkdir(os.path.join(tree, name))
    box = os.path.join(tree, name)
    if "state stopped" in helpers.cat(os.path.join(box, "status")).decode():
        with open(os.path.join(box, "ctl"), "w") as f:
            f.write("start\n")
    return box


def run(box, line):
    fd = os.open(os.path.join(box, "exec"), os.O_RDWR)
    try:
        os.write(fd, line.encode())
        return helpers.read_all(fd, timeout=60)
    finally:
        os.close(fd)


def test_one_tree_for_several_providers(tmp_path, daytona):
    m = mounted(tmp_path, ["providers=local,daytona"], daytona_env(daytona))
    try:
        assert sorted(os.listdir(m.path)) == ["daytona", "local"]
        st = os.stat(m.path)
        assert st.st_mode & 0o777 == 0o555 and st.st_nlink == 4
        for name in ("local", "daytona"):
            tree = m.p(name)
            assert {"ctl", "status", "err"} <= set(os.listdir(tree))
            status = parse_kv(helpers.cat(os.path.join(tree, "status")).decode())
            assert status == {"provider": name, "state": "running"}, status
            assert helpers.cat(os.path.join(tree, "err")) == b""
            assert parse_kv(helpers.cat(os.path.join(tree, "ctl")).decode())[
                "provider"] == name

        # Each tree is its provider's: a sandbox made in one is there only.
        lbox = new_box(m.p("local"), "one")
        dbox = new_box(m.p("daytona"), "two")
        assert "one" in os.listdir(m.p("local"))
        assert "one" not in os.listdir(m.p("daytona"))
        assert "two" not in os.listdir(m.p("local"))
        assert parse_kv(helpers.cat(os.path.join(dbox, "status")).decode())[
            "provider"] == "daytona"
        assert run(lbox, "echo from-local") == b"from-local\n"
        assert run(dbox, "echo from-daytona") == b"from-daytona\n"

        # Files: numbers differ between the trees and stay the same.
        helpers.put(os.path.join(lbox, "root", "tmp", "f"), b"local\n")
        helpers.put(os.path.join(dbox, "root", "tmp", "f"), b"daytona\n")
        inos = {os.stat(os.path.join(b, "root", "tmp", "f")).st_ino for b in (lbox, dbox)}
        assert len(inos) == 2
        assert {os.stat(os.path.join(b, "root", "tmp", "f")).st_ino
                for b in (lbox, dbox)} == inos
        assert helpers.cat(os.path.join(dbox, "root", "tmp", "f")) == b"daytona\n"

        # A rename from one provider to another is as between two mounts.
        with pytest.raises(OSError) as e:
            os.rename(os.path.join(lbox, "root", "tmp", "f"),
                      os.path.join(dbox, "root", "tmp", "g"))
        assert e.value.errno == errno.EXDEV
        helpers.run(["mv", os.path.join(lbox, "root", "tmp", "f"),
                     os.path.join(dbox, "root", "tmp", "g")])
        assert helpers.cat(os.path.join(dbox, "root", "tmp", "g")) == b"local\n"
        assert not os.path.exists(os.path.join(lbox, "root", "tmp", "f"))

        # The directory of providers is the mount's, not a place to write.
        for make in (os.mkdir, lambda p: open(p, "w").close()):
            with pytest.raises(OSError) as e:
                make(m.p("newdir"))
            assert e.value.errno == errno.EACCES
        with pytest.raises(OSError) as e:
            os.rmdir(m.p("local"))
        assert e.value.errno == errno.EACCES
        assert not os.path.exists(m.p("nosuch"))
        assert m.alive()
    finally:
        assert m.stop() == 0


def test_a_provider_that_does_not_start_says_why(tmp_path):
    # No Daytona credentials: its tree stays empty and says so; local works.
    m = mounted(tmp_path, ["providers=local,daytona"])
    try:
        tree = m.p("daytona")
        assert sorted(os.listdir(tree)) == ["ctl", "err", "status"]
        status = parse_kv(helpers.cat(os.path.join(tree, "status")).decode())
        assert status["state"] == "failed", status
        assert "DAYTONA_API_KEY" in status["error"], status
        err = helpers.cat(os.path.join(tree, "err")).decode()
        assert "did not start" in err and "DAYTONA_API_KEY" in err, err
        assert os.stat(os.path.join(tree, "err")).st_size == len(err)
        with pytest.raises(OSError) as e:
            os.mkdir(os.path.join(tree, "box"))
        assert e.value.errno == errno.EIO
        assert not os.path.exists(os.path.join(tree, "box"))
        assert "DAYTONA_API_KEY" in m.log_tail()

        box = new_box(m.p("local"), "fine")
        assert run(box, "echo still") == b"still\n"
        assert parse_kv(helpers.cat(m.p("local", "status")).decode())["state"] == \
            "running"
    finally:
        assert m.stop() == 0


def test_a_refused_key_says_why(tmp_path, daytona):
    env = dict(daytona_env(daytona), DAYTONA_API_KEY="dtn_" + "0" * 64)
    m = mounted(tmp_path, ["providers=local,daytona"], env)
    try:
        status = parse_kv(helpers.cat(m.p("daytona", "status")).decode())
        assert status["state"] == "failed" and "401" in status["error"], status
        assert "0" * 64 not in status["error"]
        assert run(new_box(m.p("local"), "works"), "echo ok") == b"ok\n"
    finally:
        assert m.stop() == 0


def test_a_service_that_is_down_says_so(tmp_path):
    # Daytona's address answers nothing: its tree mounts, its listing
    # fails (ECONNREFUSED, as in a mount of it alone), its err and status
    # say why.
    with socket.socket() as sock:      # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    m = mounted(tmp_path, ["providers=local,daytona"],
                {"DAYTONA_API_URL": "http://127.0.0.1:%d/api" % closed,
                 "DAYTONA_API_KEY": helpers.Emulator.API_KEY})
    try:
        tree = m.p("daytona")
        with pytest.raises(OSError) as e:
            os.listdir(tree)
        assert e.value.errno == errno.ECONNREFUSED
        err = helpers.cat(os.path.join(tree, "err")).decode()
        assert "listing sandboxes" in err, err
        status = parse_kv(helpers.cat(os.path.join(tree, "status")).decode())
        assert status["state"] == "running" and "listing sandboxes" in status["error"]
        box = new_box(m.p("local"), "fine")
        assert run(box, "echo on") == b"on\n"
    finally:
        assert m.stop() == 0


def test_credentials_from_the_config_file(tmp_path, daytona):
    # The providers and Daytona's key from the config file, none from the
    # environment.
    cfg = tmp_path / "xdg" / "sbxfs" / "config"
    cfg.parent.mkdir(parents=True)
    env = daytona_env(daytona)
    cfg.write_text("providers = daytona,local\n[daytona]\napi_url = %s\napi_key = %s\n"
                   % (env["DAYTONA_API_URL"], env["DAYTONA_API_KEY"]))
    os.chmod(cfg, 0o600)
    m = mounted(tmp_path, [], {"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    try:
        assert sorted(os.listdir(m.path)) == ["daytona", "local"]
        status = parse_kv(helpers.cat(m.p("daytona", "status")).decode())
        assert status["state"] == "running", status
        box = new_box(m.p("daytona"), "keyed")
        assert run(box, "echo keyed") == b"keyed\n"
    finally:
        assert m.stop() == 0


@pytest.mark.parametrize("providers, why", [
    ("local,nosuch", "nosuch"),
    ("local,local", "named twice"),
])
def test_bad_provider_lists_are_refused(tmp_path, providers, why):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    p = subprocess.run([helpers.sbxfs_binary(), "-f", "-o", "state_dir=%s" % (tmp_path / "s"),
                        "-o", "providers=" + providers, str(mnt)],
                       capture_output=True, timeout=30)
    assert p.returncode == 2, p
    assert why in p.stderr.decode(), p.stderr


def test_one_provider_keeps_its_root(mount):
    # A mount of one provider has no status or err of its own at its root:
    # those names are sandboxes' there.
    names = os.listdir(mount.path)
    assert "ctl" in names and "status" not in names and "err" not in names
    assert not os.path.exists(mount.p("status"))
    wait_for(lambda: os.path.ismount(mount.path), 5)
