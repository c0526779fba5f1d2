"""The docker provider against a real engine: Podman's Docker API behind the
counting proxy of tests/emulators/engine.py.

What only the docker provider has: finding the engine (DOCKER_HOST, or
-o api_url), containers made and removed by other clients of the same
engine, -o label=K=V, status from the engine's own record, the files of a
stopped container read through the archive API, and what a read and a
command cost in requests.  What every remote provider must do is in
test_remote.py; the tree contract is checked by the other modules run
with SBXFS_PROVIDERS=docker.

The module runs only when docker is among SBXFS_PROVIDERS (the mount-docker
group): its engine is Podman, which the other groups need not have.
"""

import errno
import json
import os
import socket
import subprocess

import pytest

import conftest
import helpers
from helpers import (Box, ENGINE_IMAGE, errno_of, read_bytes, wait_for,
                     write_ok)

if "docker" not in [helpers.provider_base(p) for p in conftest.PROVIDERS]:
    pytest.skip("docker is not among SBXFS_PROVIDERS",
                allow_module_level=True)

LABEL = "sbxfs.test=yes"
ARCHIVE_GET = "GET /containers/{id}/archive"
ARCHIVE_HEAD = "HEAD /containers/{id}/archive"


@pytest.fixture(scope="module")
def dmount(tmp_path_factory):
    """A docker mount of its own, with its own engine."""
    yield from conftest.own_mount(tmp_path_factory, "docker", ["timeout=5"])


@pytest.fixture
def emu(dmount):
    yield from conftest.fault_free(dmount.emulator)


@pytest.fixture
def dbox(request, dmount):
    yield from conftest.unstarted_box(request, dmount)


backing = helpers.backing


put = helpers.put


count = helpers.count


def inspect(emu, name):
    """The engine's record of a container (GET /containers/NAME/json)."""
    status, _, body = emu.request("GET", "/v1.41/containers/%s/json" % name)
    assert status == 200, (status, body)
    return json.loads(body)


def other_client_run(emu, name, *options):
    """A waiting container made by another client of the engine."""
    emu.podman("run", "-d", "--name", name, *options, ENGINE_IMAGE,
               "sleep", "1000000")


def other_client_rm(emu, name):
    emu.podman("rm", "--force", "--time", "0", name, check=False)


def try_mount(tmp_path, env, *opts):
    """Run sbxfs in the foreground where it cannot mount: the result."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    argv = [helpers.sbxfs_binary(), "-f", "-o", "provider=docker",
            "-o", "state_dir=%s" % (tmp_path / "s"),
            "-o", "image=" + ENGINE_IMAGE]
    for o in opts:
        argv += ["-o", o]
    cp = subprocess.run(argv + [str(mnt)], env=env, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=60)
    assert not helpers.is_mounted(str(mnt))
    return cp


class SideMount:
    """A second mount on the engine of another mount (Mount.start would
    start an engine of its own), with its own options and environment."""

    def __init__(self, tmp_path, emulator, opts, env=None):
        self.m = helpers.Mount(tmp_path / "mnt", tmp_path / "state",
                               tmp_path / "log", "docker", opts)
        self.m.emulator = emulator
        self.env = env if env is not None else emulator.env()

    def __enter__(self):
        m = self.m
        with open(m.log_path, "ab") as log:
            m.proc = subprocess.Popen(m.argv(), stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=log, env=self.env,
                                      start_new_session=True)
        try:
            wait_for(lambda: os.path.ismount(m.path) or
                     m.proc.poll() is not None, 60, what="the mount")
            assert os.path.ismount(m.path), \
                "sbxfs exited %s\n%s" % (m.proc.returncode, m.log_tail())
        except BaseException:
            m._kill()
            raise
        return m

    def __exit__(self, *exc):
        rc = self.m.stop()
        assert rc == 0, self.m.log_tail()


# ------------------------------------------------------------ the engine

@pytest.mark.parametrize("how", ["absent", "refusing"])
def test_engine_not_running_is_a_mount_error_naming_the_socket(tmp_path, how):
    # No engine at DOCKER_HOST: no socket at all, or one nobody listens
    # on (an engine that died).  The mount fails at once with one line
    # that names the socket.
    sock = str(tmp_path / "engine.sock")
    if how == "refusing":
        s = socket.socket(socket.AF_UNIX)
        s.bind(sock)
        s.close()
    env = dict(os.environ, DOCKER_HOST="unix://" + sock)
    cp = try_mount(tmp_path, env)
    assert cp.returncode != 0
    err = cp.stderr.decode()
    assert sock in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_api_url_option_overrides_the_environment(tmp_path, dmount):
    name = helpers.box_name("seen")
    os.mkdir(dmount.p(name))
    try:
        env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock")
        with SideMount(tmp_path, dmount.emulator,
                       ["api_url=" + dmount.emulator.url()], env) as m:
            assert name in m.names()
    finally:
        os.rmdir(dmount.p(name))


# ------------------------------------------------------------ other clients

def test_containers_of_other_clients_come_and_go(dmount, emu):
    # A container made with podman on the same engine is listed at the
    # next listing, and one removed behind sbxfs's back is gone from the
    # next listing.
    name = helpers.box_name("other")
    other_client_run(emu, name)
    try:
        assert name in dmount.names()
        box = Box(dmount, name)
        assert box.state() == "running"
        st = box.status()
        assert inspect(emu, name)["Id"].startswith(st["id"]), st
        assert box.check("echo made elsewhere") == "made elsewhere\n"
    finally:
        other_client_rm(emu, name)
    assert name not in dmount.names()


def test_label_selects_containers_and_marks_new_ones(tmp_path, dmount, emu):
    mine = helpers.box_name("labelled")
    theirs = helpers.box_name("unlabelled")
    made = helpers.box_name("made")
    other_client_run(emu, mine, "--label", LABEL)
    other_client_run(emu, theirs)
    try:
        with SideMount(tmp_path, emu, ["label=" + LABEL]) as m:
            names = m.names()
            assert mine in names and theirs not in names, names
            os.mkdir(m.p(made))
            try:
                labels = inspect(emu, made)["Config"]["Labels"] or {}
                assert labels.get("sbxfs.test") == "yes", labels
                assert made in m.names()
                assert made in dmount.names()      # no label asked there
            finally:
                os.rmdir(m.p(made))
            assert made not in m.names()
        assert mine in dmount.names() and theirs in dmount.names()
    finally:
        other_client_rm(emu, mine)
        other_client_rm(emu, theirs)


# ------------------------------------------------------------ status

def test_status_shows_state_image_and_created(dbox, emu):
    info = inspect(emu, dbox.name)
    st = dbox.status()
    assert st["name"] == dbox.name
    assert st["provider"] == "docker"
    assert st["state"] == "running"
    assert len(st["id"]) >= 12 and info["Id"].startswith(st["id"]), st
    assert st["image"] == ENGINE_IMAGE, st
    assert helpers.ISO_UTC.match(st["created"]), st
    assert st["created"][:19].replace(" ", "T") == info["Created"][:19], \
        (st, info["Created"])
    dbox.stop()
    st = dbox.status()
    assert st["state"] == "stopped"
    assert st["image"] == ENGINE_IMAGE
    assert inspect(emu, dbox.name)["State"]["Running"] is False


def test_files_of_a_stopped_container_are_read_only(dbox, emu):
    put(backing(emu, dbox, "tmp", "planted"), "from the engine side\n")
    put(dbox.r("tmp", "written"), "through the mount\n")
    dbox.stop()
    assert read_bytes(dbox.r("tmp", "planted")) == b"from the engine side\n"
    assert read_bytes(dbox.r("tmp", "written")) == b"through the mount\n"
    assert read_bytes(dbox.r("etc", "passwd")).startswith(b"root:")
    assert errno_of(put, dbox.r("tmp", "new"), "x") == errno.EROFS
    assert not os.path.exists(backing(emu, dbox, "tmp", "new"))
    dbox.start()
    assert dbox.check("cat /tmp/planted /tmp/written") == \
        "from the engine side\nthrough the mount\n"


# ------------------------------------------------------------ requests

def test_reading_a_small_file_costs_one_archive_get(dbox, emu):
    # Made on the engine side: nothing about it is known to the mount, so
    # its lookup is the engine's stat and one script (owner, links), then
    # one download.
    put(backing(emu, dbox, "tmp", "small"), "twelve bytes")
    os.stat(dbox.r("tmp"))
    emu.reset_stats()
    assert helpers.cat(dbox.r("tmp", "small")) == b"twelve bytes"
    s = emu.stats()
    assert count(s, ARCHIVE_GET) == 1, s
    assert count(s, ARCHIVE_HEAD) <= 1, s
    assert count(s, "POST /exec/{id}/start") <= 1, s
    assert count(s) <= 4, s
    # Once listed, a file costs its download alone.
    put(backing(emu, dbox, "tmp", "listed"), "listed bytes")
    os.listdir(dbox.r("tmp"))
    emu.reset_stats()
    assert helpers.cat(dbox.r("tmp", "listed")) == b"listed bytes"
    s = emu.stats()
    assert count(s) == count(s, ARCHIVE_GET) == 1, s


def test_a_short_command_costs_a_few_requests(dbox, emu):
    write_ok(dbox.p("exec"), "true")        # the container is known
    helpers.cat(dbox.p("exec"))
    emu.reset_stats()
    write_ok(dbox.p("exec"), "true")
    assert helpers.cat(dbox.p("exec")) == b""
    s = emu.stats()
    assert count(s) <= 4, s
    assert count(s, "POST /exec/{id}/start") == 1, s
