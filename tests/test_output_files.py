"""A command's output and the control files behave like files to the
Unix toolbox: sizes are real; cmd/N/stdout, stderr and out are seekable
within what has come (head, tail -n and grep -m1 read them without errors
while the command runs, tail -f follows them, and tools that read to the
end, cat and less, end with the command); exec keeps its Plan 9 meaning
while head and grep stop early without errors."""

import os
import subprocess

import pytest

from helpers import cat, put, read_text, run, wait_for, write_ok


def tool(args, **kw):
    """Run a real tool; its stdout, after checking it said nothing on
    stderr and exited 0."""
    cp = run(args, check=False, **kw)
    assert cp.returncode == 0 and cp.stderr == b"", (args, cp.returncode, cp.stderr)
    return cp.stdout


def gated(box, gate, before, after):
    """Start a command that prints `before`, waits for the file `gate` in
    the sandbox's /tmp (made through root/: no clock), then prints
    `after`.  Its number."""
    return box.spawn("printf '%s'; while [ ! -e /tmp/%s ]; do sleep 0.05; done; "
                     "printf '%s'" % (before, gate, after))


def test_output_grows_like_a_log_file(box, request):
    gate = "gate-%s" % request.node.name.replace("[", "-").rstrip("]")
    n = gated(box, gate, "one\\ntwo\\n", "three\\n")
    out = box.cmd(n, "stdout")
    wait_for(lambda: os.stat(out).st_size == 8, what="8 bytes of output")
    assert box.cmd_status(n) == "running"
    # While it runs: what has come is the file, and it is seekable.
    assert tool(["head", "-1", out]) == b"one\n"
    assert tool(["tail", "-n", "1", out]) == b"two\n"
    assert tool(["grep", "-m1", "t", out]) == b"two\n"
    with open(out, "rb") as f:
        f.seek(4)
        assert f.read(4) == b"two\n"
    # tail -f prints what is there, then follows until we stop it.
    follow = subprocess.Popen(["tail", "-f", out], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        assert follow.stdout.read(8) == b"one\ntwo\n"
        put(box.r("tmp", gate), "")
        assert follow.stdout.read(6) == b"three\n"
    finally:
        follow.terminate()
        _, err = follow.communicate(timeout=30)
    assert err == b"", err
    assert box.wait_cmd_done(n) == "exited 0"
    # After it: the same file, whole.
    assert os.stat(out).st_size == 14
    assert tool(["tail", "-n", "1", out]) == b"three\n"
    assert tool(["head", "-c", "3", out]) == b"one"
    assert tool(["tail", "-c", "6", out]) == b"three\n"
    assert tool(["less", "-F", out]) == b"one\ntwo\nthree\n"
    assert tool(["wc", "-c", box.cmd(n, "out")]).split()[0] == b"14"
    assert os.stat(box.cmd(n, "stderr")).st_size == 0
    os.unlink(box.r("tmp", gate))


def test_exec_stops_early_without_errors(box):
    write_ok(box.p("exec"), "printf 'a\\nb\\nc\\n'")
    assert tool(["head", "-1", box.p("exec")]) == b"a\n"
    assert tool(["grep", "-m1", "b", box.p("exec")]) == b"b\n"
    # One descriptor, opened to write the command and read its output: a
    # reader that stops early leaves the offset where it stopped.
    out = tool(["sh", "-c", "exec 3<>\"$1\"; echo 'printf \"x\\ny\\nz\\n\"' >&3; "
                "head -1 <&3; cat <&3", "sh", box.p("exec")])
    assert out == b"x\ny\nz\n", out


def test_control_files_report_their_size(box):
    # test -s, wc -c and stat see what cat sees.
    n = box.spawn("exit 3")
    assert box.wait_cmd_done(n) == "exited 3"
    for f in (box.p("status"), box.p("ctl"), box.cmd(n, "status"),
              box.cmd(n, "cmdline"), box.mount.p("ctl")):
        text = cat(f)
        assert text, f
        assert os.stat(f).st_size == len(text), (f, text)
        run(["test", "-s", f])
    assert read_text(box.cmd(n, "status")) == "exited 3\n"
    # err: empty, then the text of a failure.
    assert os.stat(box.p("err")).st_size == len(cat(box.p("err")))
    assert write_ok_or_errno(box.p("ctl"), "explode\n")
    text = cat(box.p("err"))
    assert b"explode" in text
    assert os.stat(box.p("err")).st_size == len(text)
    run(["test", "-s", box.p("err")])


def write_ok_or_errno(path, data):
    """Write data once; True when the write failed (an error for err)."""
    try:
        with open(path, "w") as f:
            f.write(data)
    except OSError:
        return True
    return False
