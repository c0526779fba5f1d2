"""The config file, $XDG_CONFIG_HOME/sbxfs/config: defaults beneath the
command line, credentials per provider, and clear refusals (the line of
a malformed one; a credential that other users can read)."""

import os
import subprocess

import pytest

import conftest
import helpers
from helpers import parse_kv, wait_for

pytestmark = pytest.mark.skipif("local" not in conftest.PROVIDERS,
                                reason="the config file, read with the local provider")


def sbxfs(tmp_path, text, *args, mode=0o600):
    """Run sbxfs in the foreground with `text` as its config file; the
    process, and the mount point."""
    cfg = tmp_path / "xdg" / "sbxfs"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config").write_text(text)
    os.chmod(cfg / "config", mode)
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    p = subprocess.Popen([helpers.sbxfs_binary(), "-f", "-o",
                          "state_dir=%s" % (tmp_path / "state")] + list(args) + [str(mnt)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p, str(mnt)


def ctl_of(p, mnt):
    try:
        wait_for(lambda: os.path.exists(os.path.join(mnt, "ctl")) or p.poll() is not None,
                 30, what="the mount")
        assert p.poll() is None, p.communicate()
        return parse_kv(open(os.path.join(mnt, "ctl")).read())
    finally:
        helpers.run(["fusermount3", "-u", mnt], check=False)
        p.wait(timeout=30)


def refused(p):
    _, err = p.communicate(timeout=30)
    assert p.returncode == 2, (p.returncode, err)
    return err.decode()


def test_defaults_come_from_the_file(tmp_path):
    text = "# sbxfs\nattr_timeout = 7\n[local]\nsubtree_entries = 123\n" \
           "[daytona]\nattr_timeout = 1\n"
    ctl = ctl_of(*sbxfs(tmp_path, text))
    assert ctl["provider"] == "local" and ctl["attr_timeout"] == "7", ctl
    # The command line beats the file.
    ctl = ctl_of(*sbxfs(tmp_path, text, "-o", "attr_timeout=3"))
    assert ctl["attr_timeout"] == "3", ctl


def test_malformed_lines_name_their_line(tmp_path):
    err = refused(sbxfs(tmp_path, "attr_timeout = 7\n\nwhat is this\n")[0])
    assert "config:3: expected \"key = value\"" in err, err
    err = refused(sbxfs(tmp_path, "[local]\nattr_timout = 7\n")[0])
    assert "config:2: unknown key \"attr_timout\"" in err, err
    err = refused(sbxfs(tmp_path, "attr_timeout = soon\n")[0])
    assert "attr_timeout must be seconds" in err, err


def test_a_credential_others_can_read_is_refused(tmp_path):
    err = refused(sbxfs(tmp_path, "[daytona]\napi_key = dtn_secret\n", mode=0o644)[0])
    assert "api_key, line 2" in err and "0644" in err and "chmod 600" in err, err
    assert "dtn_secret" not in err
    ctl_of(*sbxfs(tmp_path, "[daytona]\napi_key = dtn_secret\n", mode=0o600))


def check(tmp_path, *args, env=None):
    cp = subprocess.run([helpers.sbxfs_binary(), "--check", "-o",
                         "state_dir=%s" % (tmp_path / "state")] + list(args),
                        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        timeout=120)
    return cp.returncode, cp.stdout.decode()


def test_check_tells_what_is_missing(tmp_path):
    # All there: every line is ok, and sbxfs --check says so by its status.
    rc, out = check(tmp_path)
    assert rc == 0, out
    for what in ("FUSE", "fusermount3", "bubblewrap", "user namespaces",
                 "reaching the service"):
        assert "ok   %s:" % what in out, out
    # No bubblewrap on PATH: the line says how to get it.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(helpers.run(["sh", "-c", "command -v fusermount3"]).stdout.decode().strip(),
               bin_dir / "fusermount3")
    rc, out = check(tmp_path, env=dict(os.environ, PATH=str(bin_dir)))
    assert rc == 1 and "FAIL bubblewrap:" in out and "apt-get install bubblewrap" in out, out
    # A remote provider without credentials, then one that cannot be
    # reached: each says what to fix, and no secret shows.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAYTONA")}
    rc, out = check(tmp_path, "-o", "provider=daytona", env=env)
    assert rc == 1 and "FAIL daytona:" in out and "DAYTONA_API_KEY" in out, out
    rc, out = check(tmp_path, "-o", "provider=daytona", "-o", "api_key=dtn_hidden",
                    "-o", "api_url=http://127.0.0.1:9/api", "-o", "timeout=2", env=env)
    assert rc == 1 and "ok   daytona:" in out and "FAIL reaching the service:" in out, out
    assert "dtn_hidden" not in out
