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
import select
import shutil
import socket
import ssl
import subprocess
import threading

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
    # Every change is refused from what the mount knows: no exec is
    # tried on a container that cannot run one.
    emu.reset_stats()
    planted = dbox.r("tmp", "planted")
    assert errno_of(os.mkdir, dbox.r("tmp", "dir")) == errno.EROFS
    assert errno_of(os.unlink, planted) == errno.EROFS
    assert errno_of(os.rename, planted, dbox.r("tmp", "moved")) == errno.EROFS
    assert errno_of(os.chmod, planted, 0o600) == errno.EROFS
    assert errno_of(os.symlink, "planted", dbox.r("tmp", "link")) == errno.EROFS
    assert errno_of(os.truncate, planted, 0) == errno.EROFS
    assert errno_of(os.open, planted, os.O_WRONLY) == errno.EROFS
    assert "read-only" in dbox.err()
    assert count(emu.stats(), "POST /containers/{id}/exec") == 0, emu.stats()
    assert read_bytes(planted) == b"from the engine side\n"
    dbox.start()
    assert dbox.check("cat /tmp/planted /tmp/written") == \
        "from the engine side\nthrough the mount\n"


# ------------------------------------------------------------ requests

TURN = "TURN POST /exec/{id}/start"


def test_reading_a_small_file_costs_one_turn_on_a_kept_shell(dbox, emu):
    # Made on the engine side: nothing about it is known to the mount, so
    # its lookup is one script (all of lstat), then one cat on the same
    # kept shell: no archive GET, which costs the engine a mount of the
    # container's storage.
    put(backing(emu, dbox, "tmp", "small"), "twelve bytes")
    os.stat(dbox.r("tmp"))
    helpers.settle(dbox)
    emu.reset_stats()
    assert helpers.cat(dbox.r("tmp", "small")) == b"twelve bytes"
    s = emu.stats()
    assert count(s, ARCHIVE_GET) == 0, s
    assert count(s, TURN) == 2, s
    assert count(s) == 2, s
    # Once listed, a file costs its cat alone.
    put(backing(emu, dbox, "tmp", "listed"), "listed bytes")
    os.listdir(dbox.r("tmp"))
    emu.reset_stats()
    assert helpers.cat(dbox.r("tmp", "listed")) == b"listed bytes"
    s = emu.stats()
    assert count(s) == count(s, TURN) == 1, s


def test_a_big_file_streams_from_its_archive(dbox, emu):
    # Over 4 MiB, a file comes as one archive GET read as it streams,
    # not through a shell's output held in memory; and a stopped
    # container's small files come from their archives too.
    big = os.urandom(5 << 20)
    with open(backing(emu, dbox, "tmp", "big"), "wb") as f:
        f.write(big)
    put(backing(emu, dbox, "tmp", "small"), "small")
    os.listdir(dbox.r("tmp"))
    emu.reset_stats()
    assert read_bytes(dbox.r("tmp", "big")) == big
    s = emu.stats()
    assert count(s, ARCHIVE_GET) == 1 and count(s, TURN) == 0, s
    dbox.stop()
    emu.reset_stats()
    assert read_bytes(dbox.r("tmp", "small")) == b"small"
    s = emu.stats()
    assert count(s, ARCHIVE_GET) >= 1 and count(s, TURN) == 0, s
    assert count(s, "POST /containers/{id}/exec") == 0, s


def test_a_short_command_costs_a_few_requests(dbox, emu):
    # The first command of a container is an exec of its own, and opens
    # two spare shells for the next off its path; the next is one turn on
    # a spare, and opens one more.
    write_ok(dbox.p("exec"), "true")
    helpers.cat(dbox.p("exec"))
    assert "spares: 0 ready, 0 opening" not in helpers.read_text(dbox.p("status"))
    helpers.settle(dbox)
    assert "spares: 2 ready, 0 opening" in helpers.read_text(dbox.p("status"))
    emu.reset_stats()
    write_ok(dbox.p("exec"), "echo spare")
    assert helpers.cat(dbox.p("exec")) == b"spare\n"
    s = emu.stats()
    assert count(s, "TURN POST /exec/{id}/start") == 1, s
    assert count(s, "POST /containers/{id}/exec") <= 1, s
    assert count(s) <= 4, s
    # A spare's stdin is the command's: what follows its line on the
    # stream, none of it taken by the shell that read the line.
    emu.reset_stats()
    n = dbox.spawn("| read a; read b; echo \"$b $a\"; cat")
    helpers.sh("printf 'one\\ntwo\\nthree' > %s" % helpers.q(dbox.cmd(n, "stdin")))
    assert dbox.wait_cmd_done(n) == "exited 0"
    assert helpers.cat(dbox.cmd(n, "stdout")) == b"two one\nthree"
    assert count(emu.stats(), "TURN POST /exec/{id}/start") >= 1, emu.stats()


# ------------------------------------------------------------ tcp:// and TLS

def make_docker_certs(d):
    """What `docker` itself reads from DOCKER_CERT_PATH, as an engine set up
    with --tlsverify has it: a CA (ca.pem), the client's certificate and
    key signed by it (cert.pem, key.pem), and the engine's for 127.0.0.1
    (server-cert.pem, server-key.pem)."""
    def ossl(*args):
        subprocess.run(("openssl",) + args, check=True, cwd=d, timeout=60,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", "ca-key.pem", "-out", "ca.pem", "-subj", "/CN=sbxfs test CA")
    for name, subj, ext in (("server-", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1"),
                            ("", "/CN=client", "extendedKeyUsage=clientAuth")):
        ossl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", subj,
             "-keyout", name + "key.pem", "-out", name + "req.pem")
        with open(os.path.join(d, name + "ext.cnf"), "w") as f:
            f.write(ext + "\n")
        ossl("x509", "-req", "-in", name + "req.pem", "-CA", "ca.pem",
             "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "2",
             "-extfile", name + "ext.cnf", "-out", name + "cert.pem")


class TlsEngine:
    """The engine behind TCP and TLS that asks for the client's certificate
    (dockerd --tlsverify): each connection relayed as raw bytes to the
    engine's Unix socket, by one thread that alone uses its TLS object.
    The client's close_notify ends the engine's input (shutdown(SHUT_WR)),
    as Go's TLS hands it to dockerd, and the engine's output still flows
    until the engine ends the stream."""

    def __init__(self, unix_path, certs):
        self.unix_path = unix_path
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(certs, "server-cert.pem"),
                                 os.path.join(certs, "server-key.pem"))
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.load_verify_locations(os.path.join(certs, "ca.pem"))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.refused = 0
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        c.settimeout(30)
        try:
            t = self.ctx.wrap_socket(c, server_side=True)
        except (ssl.SSLError, OSError):
            self.refused += 1
            c.close()
            return
        u = socket.socket(socket.AF_UNIX)
        u.connect(self.unix_path)
        client_open = True
        try:
            while True:
                ready = [t] if client_open and t.pending() else select.select(
                    [u] + ([t] if client_open else []), [], [], 60)[0]
                if not ready:
                    break
                if t in ready:
                    try:
                        data = t.recv(65536)
                    except ssl.SSLWantReadError:
                        data = None
                    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                        data = b""
                    if data:
                        u.sendall(data)
                    elif data is not None:
                        client_open = False
                        u.shutdown(socket.SHUT_WR)
                if u in ready:
                    data = u.recv(65536)
                    if not data:
                        break
                    t.sendall(data)
        except OSError:
            pass
        finally:
            u.close()
            t.close()

    def close(self):
        self.sock.close()


def test_tcp_with_tls_and_a_client_certificate(tmp_path, dmount):
    # DOCKER_HOST=tcp://, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, as the
    # docker client takes them, against an engine that checks the client's
    # certificate: files, a command, its stdin and its end, over TLS.
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make certificates")
    certs = tmp_path / "certs"
    certs.mkdir()
    make_docker_certs(str(certs))
    engine = TlsEngine(dmount.emulator.url()[len("unix://"):], str(certs))
    env = dict(os.environ, DOCKER_HOST="tcp://127.0.0.1:%d" % engine.port,
               DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(certs))
    try:
        with SideMount(tmp_path / "side", dmount.emulator, [], env) as m:
            b = helpers.new_box(m, "tls", start=True)
            try:
                put(b.r("tmp", "f"), "over tls\n")
                assert read_bytes(b.r("tmp", "f")) == b"over tls\n"
                assert b.check("cat /tmp/f") == "over tls\n"
                n = b.spawn("| cat")
                helpers.sh("printf hi > %s" % helpers.q(b.cmd(n, "stdin")))
                assert b.wait_cmd_done(n) == "exited 0"
                assert read_bytes(b.cmd(n, "stdout")) == b"hi"
            finally:
                helpers.remove_box(b)
        assert engine.refused == 0
        # Without the client's certificate the engine refuses the
        # handshake, and the mount fails saying where.
        bare = tmp_path / "bare"
        bare.mkdir()
        shutil.copy(str(certs / "ca.pem"), str(bare / "ca.pem"))
        (tmp_path / "nocert").mkdir()
        cp = try_mount(tmp_path / "nocert",
                       dict(env, DOCKER_CERT_PATH=str(bare)))
        assert cp.returncode != 0
        assert "127.0.0.1:%d" % engine.port in cp.stderr.decode(), cp.stderr
        assert engine.refused >= 1
    finally:
        engine.close()
