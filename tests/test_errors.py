"""Failures of the service are errors, never missing names.

A sandbox listing that fails (the service answers 500) must fail a lookup
under the mount with EIO, not "No such file or directory": ENOENT would
tell tools and users that the sandbox is gone.  Run against the Daytona
emulator, whose fault injection makes the listing fail.
"""

import errno
import os
import time

import pytest

import conftest
import helpers
from helpers import errno_of


@pytest.fixture(scope="module")
def emount(tmp_path_factory):
    """A daytona mount that lists sandboxes again at every lookup."""
    yield from conftest.own_mount(tmp_path_factory, "daytona", ["timeout=5", "attr_timeout=0"], 'errors')


@pytest.fixture
def emu(emount):
    yield from conftest.fault_free(emount.emulator)


@pytest.fixture
def ebox(request, emount):
    yield from conftest.unstarted_box(request, emount)


def test_failed_listing_is_eio_not_enoent(ebox, emu):
    assert os.path.isdir(ebox.path)
    emu.fault(kind="status", status=500, prefix="/api/sandbox", method="GET",
              count=100)
    # The daemon keeps the list of sandboxes for the provider's entry
    # timeout, except after a `new`, even one that fails; the kernel keeps
    # MOUNT/NAME for the synthetic timeout (1 s).  Let both ask again.
    helpers.write_once(ebox.mount.ctl, "new %s\n" % ebox.name)
    time.sleep(1.5)
    assert errno_of(os.listdir, ebox.path) == errno.EIO
    assert errno_of(os.stat, ebox.mount.p("no-such-box")) == errno.EIO
    emu.clear_faults()
    assert "ctl" in os.listdir(ebox.path)
    assert errno_of(os.stat, ebox.mount.p("no-such-box")) == errno.ENOENT
