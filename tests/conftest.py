"""Fixtures for the sbxfs mount-level tests.

Environment:
  SBXFS            the daemon binary (default: build/sbxfs in the repo)
  SBXFS_PROVIDERS  comma-separated providers to run the suite against
                   (default: local; meson test sets every provider).
                   NAME@VARIANT runs a remote provider against its
                   emulator's server variant, e.g. rexec@old
  SBXFS_OPTS       extra comma-separated -o options for every mount
  SBXFS_DEBUG      if set, mount with -d (debug log, printed on failure)
  SBXFS_TEST_TIMEOUT  seconds after which a hung test has its daemon killed
                   (default 600) so that blocked system calls return
"""

import os
import threading

import pytest

import helpers
from helpers import Mount, require_sandboxes

PROVIDERS = [p.strip() for p in
             os.environ.get("SBXFS_PROVIDERS", "local").split(",")
             if p.strip()]

ALL_MOUNTS = []


def _extra_opts():
    s = os.environ.get("SBXFS_OPTS", "")
    return [o for o in s.split(",") if o]


def _require_machine():
    reason = helpers.fuse_unavailable()
    if reason:
        pytest.skip(reason)
    binary = helpers.sbxfs_binary()
    if not os.access(binary, os.X_OK):
        pytest.fail("sbxfs binary %s not found: build it first "
                    "(meson setup build && ninja -C build) or set SBXFS"
                    % binary, pytrace=False)


@pytest.fixture(scope="session", params=PROVIDERS)
def provider(request):
    return request.param


class MountFactory:
    def __init__(self, tmp_path_factory, provider):
        self.tmp_path_factory = tmp_path_factory
        self.provider = provider
        self.mounts = []

    def __call__(self, state_dir=None):
        _require_machine()
        if helpers.provider_base(self.provider) == "docker":
            require_sandboxes(self.provider)    # its engine is Podman
        base = self.tmp_path_factory.mktemp("sbxfs")
        m = Mount(base / "mnt", state_dir or (base / "state"),
                  base / "sbxfs.log", self.provider, _extra_opts())
        ALL_MOUNTS.append(m)
        self.mounts.append(m)
        m.start()
        return m

    def close(self, check=True):
        problems = []
        for m in self.mounts:
            if m.proc is None:
                helpers.unmount(m.path)
                continue
            was_alive = m.alive()
            rc = m.stop()
            if not check:
                continue
            if not was_alive:
                problems.append("sbxfs on %s died during the tests (exit %s)"
                                "\n%s" % (m.path, m.proc.returncode,
                                          m.log_tail()))
            elif rc != 0:
                problems.append("sbxfs on %s exited %r after fusermount3 -u"
                                "\n%s" % (m.path, rc, m.log_tail()))
            if helpers.is_mounted(m.path):
                problems.append("%s is still mounted" % m.path)
        self.mounts = []
        assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def mount(tmp_path_factory, provider):
    """A daemon mounted for the whole test module.

    Teardown checks that the daemon survived the module and exits cleanly on
    fusermount3 -u.
    """
    f = MountFactory(tmp_path_factory, provider)
    m = f()
    yield m
    f.close()


@pytest.fixture
def make_mount(tmp_path_factory, provider):
    """Factory for extra mounts (own state dir unless one is given)."""
    f = MountFactory(tmp_path_factory, provider)
    yield f
    f.close()


# ---------------------------------------------------------------- a provider's own mount

def own_mount(tmp_path_factory, provider, opts, hint=None):
    """Body of a module fixture: a mount of `provider` (NAME@VARIANT too)
    with its own state and emulator, whatever SBXFS_PROVIDERS says.
    Teardown checks that the daemon exits cleanly."""
    require_sandboxes(helpers.provider_base(provider))
    base = tmp_path_factory.mktemp(hint or provider.replace("@", "-"))
    m = Mount(base / "mnt", base / "state", base / "sbxfs.log", provider,
              opts)
    ALL_MOUNTS.append(m)
    m.start()
    yield m
    rc = m.stop()
    assert rc == 0, m.log_tail()


def fault_free(emulator):
    """Body of a fixture: the emulator, with no fault left before or after."""
    emulator.clear_faults()
    yield emulator
    emulator.clear_faults()


def unstarted_box(request, mount):
    """Body of a fixture: a sandbox made for the test, never started."""
    b = helpers.new_box(mount, request.node.name, start=False)
    yield b
    helpers.remove_box(b)


@pytest.fixture
def box(request, mount, provider):
    """A started sandbox, deleted afterwards.  Its value is its path."""
    require_sandboxes(provider)
    b = helpers.new_box(mount, request.node.name, start=True)
    yield b
    helpers.remove_box(b)


@pytest.fixture
def stopped_box(request, mount):
    """A created but never started sandbox."""
    b = helpers.new_box(mount, request.node.name, start=False)
    if helpers.initial_state(b.mount.provider) == "running":
        b.stop()
    yield b
    helpers.remove_box(b)


@pytest.fixture(scope="module")
def module_box(request, mount, provider):
    """One started sandbox shared by a whole module."""
    require_sandboxes(provider)
    b = helpers.new_box(mount, request.module.__name__, start=True)
    yield b
    helpers.remove_box(b)


def pytest_sessionfinish(session, exitstatus):
    helpers.stop_emulators()


# ---------------------------------------------------------------- watchdog

@pytest.fixture(autouse=True)
def _watchdog(request):
    """Kill the daemons if a test hangs, so its blocked calls return.

    The test that hung fails alone: every mount it killed that outlives
    the test (a module's mount) is mounted again on the same state dir
    before the next test, instead of leaving the rest of the module a
    dead mount.  Mounts the test made itself are gone by then (this
    fixture is set up first and so torn down last)."""
    limit = float(os.environ.get("SBXFS_TEST_TIMEOUT", "600"))
    killed = []

    def fire():
        for m in list(helpers.LIVE_MOUNTS):
            killed.append(m)
            m._kill()

    t = threading.Timer(limit, fire)
    t.daemon = True
    t.start()
    yield
    t.cancel()
    if not killed:
        return
    problems = []
    for m in killed:
        if m in helpers.LIVE_MOUNTS and not m.alive():
            try:
                m.start()
            except AssertionError as e:
                problems.append(str(e))
    pytest.fail("test hung for %ss; the daemon was killed%s"
                % (limit, "".join("\n" + p for p in problems)))


# ---------------------------------------------------------------- logs

def pytest_runtest_setup(item):
    item._sbxfs_log_offsets = {id(m): m.log_size() for m in ALL_MOUNTS}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    offsets = getattr(item, "_sbxfs_log_offsets", {})
    for m in ALL_MOUNTS:
        start = offsets.get(id(m), 0)
        if m.log_size() <= start and m not in helpers.LIVE_MOUNTS:
            continue
        if m.log_size() <= start:
            text = "(nothing logged during this test; tail follows)\n" + \
                m.log_tail(4000)
        else:
            text = m.log_since(start)
        state = "alive" if m.alive() else "exited %s" % (
            m.proc.returncode if m.proc else None)
        rep.sections.append(("sbxfs log %s (%s)" % (m.log_path, state),
                             text))
