"""The test harness itself: a test that hangs fails alone."""

import os
import shutil
import subprocess
import sys

import helpers

HERE = os.path.dirname(os.path.abspath(__file__))

INNER = '''
import os
import time


def test_hangs(mount):
    # Stands for a call blocked in the daemon: it ends when the watchdog
    # kills the daemon.
    deadline = time.monotonic() + 60
    while mount.alive() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_after_it(mount):
    mount.still_works()
    open(os.environ["MARKER"], "w").close()
'''


def test_a_hung_test_fails_alone(tmp_path):
    # The watchdog kills the module's daemon under the hung test; the test
    # after it finds a working mount again, on the same state dir.
    shutil.copy(os.path.join(HERE, "conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_inner.py").write_text(INNER)
    marker = tmp_path / "passed"
    env = dict(os.environ, SBXFS_TEST_TIMEOUT="3", SBXFS_PROVIDERS="local",
               SBXFS=helpers.sbxfs_binary(), MARKER=str(marker),
               PYTHONPATH=HERE)
    cp = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--basetemp=%s" % (tmp_path / "t"), str(tmp_path / "test_inner.py")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, timeout=120)
    out = cp.stdout.decode(errors="replace")
    assert cp.returncode == 1, out
    assert "test hung for 3.0s; the daemon was killed" in out, out
    assert marker.exists(), out
