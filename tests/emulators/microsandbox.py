#!/usr/bin/env python3
"""A test emulator of microsandbox 0.7.2 (local backend): the `msb` CLI, the
per-sandbox process with its agent relay on agent.sock, and agentd; with
--cloud-key, also a stand-in for the cloud backend (REST + agent WebSocket,
microsandbox_cloud.py) over the same sandboxes.

The real product boots a libkrun microVM per sandbox, which needs KVM; this
machine has none.  Here a sandbox is a directory with a bubblewrap "keeper"
(common.Keeper, as in daytona.py) holding its pid, mount, ipc and uts
namespaces, and agentd is emulated in Python (microsandbox_agent.py, next to
this file, with common.py).  The keeper's command is a small spawner that
forks the commands inside the sandbox, so they are children of an agent
there, as in the VM.  Everything follows /work/shared/protocols/microsandbox-current.md
(§2 wire protocol, §3 lifecycle, §5 emulator plan), checked against the
v0.6.14 sources and the real msb 0.7.2 binary.

This file holds the sandbox process, the hub and main(); the rest is in
modules next to it: microsandbox_home.py (MSB_HOME and the emulator's state
files), microsandbox_cli.py (the fake `msb`), microsandbox_agent.py (the
relay and agentd) with microsandbox_wire.py (the protocol),
microsandbox_exec.py and microsandbox_fs.py, and microsandbox_cloud.py.

Three modes, by argv[1]:

  microsandbox.py cli ARGS...      the fake `msb` (tests/emulators/bin/msb).
      Honours MSB_HOME (default ~/.microsandbox).  Subcommands: --version,
      create, start, stop, rm|remove, ls|list, status|ps, inspect, pause,
      resume, help.  Exit codes, stdout, stderr and clap's usage errors are
      the real ones as observed (create ... --name N prints nothing on stdout
      and exits once the agent is ready; progress/errors go to stderr as
      "   ✓ Stopped      N" / "error: sandbox not found: N").
  microsandbox.py sandbox NAME --home DIR [--fresh]   one sandbox's process,
      started detached (setsid) by create/start: builds or reuses the root,
      starts the keeper, serves run/sandboxes/<sha256(name)[:24]>/agent.sock
      (plus a placeholder control.sock and the run/agent/<32 hex>.sock
      relative symlinks).  SIGTERM stops it (SIGQUIT: at once), SIGUSR1
      pauses, SIGUSR2 resumes.  Logs: sandboxes/NAME/logs/runtime.log.
  microsandbox.py --root DIR --port 0 [--delay S] [--generation 7|8|9]
      [--split] [--cloud-key KEY]  the harness's "hub": DIR is MSB_HOME.  It
      writes emu/config.json (read by the CLI and the sandboxes), prints the
      HTTP port on stdout and serves the control routes on 127.0.0.1; on
      SIGTERM/SIGINT it stops every sandbox of DIR.  A sandbox also stops by
      itself when the hub that configured its home is gone.  With
      --cloud-key, the same port also serves msb-cloud's /v1/sandboxes API
      (Bearer KEY) and the agent WebSocket /v1/sandboxes/{id}/agent (a byte
      pipe to agent.sock); see microsandbox_cloud.py's docstring.

The emulator's own state lives in MSB_HOME/emu/ (never a db/msb.db):
  config.json                    delay, generation, split, hub pid
  sandboxes/NAME/record.json     the sandbox's config (what inspect shows)
                                 and its uuid ("id", the cloud API's id)
  sandboxes/NAME/state.json      written by the sandbox process: pid, status,
                                 started_ns, stopped_ns
  sandboxes/NAME/cloud.json      the cloud API's last start failure
  requests.log                   one line per request ("fs.Stat", "exec",
                                 "cli.ls", "cloud.create"), appended by every
                                 process before it answers
  faults.json (+ faults.lock)    armed faults, read-modify-written under flock
The sandbox's root is MSB_HOME/sandboxes/NAME/rootfs.

Control routes (no auth, not counted):
  GET  /_emu/stats       {"fs.Stat": n, "exec": n, "cli.ls": n, ..., "total": N,
                          "routes": {the same keys}} since the last reset
  POST /_emu/reset
  POST /_emu/fault       {"kind", "prefix"?, "count"? (1), "delay"? (1.0),
                          "errno"? (5)}; prefix matches the stats key
                          ("fs.Read", "fs.", "exec", "cli.create", "cloud.").
                          Kinds (cloud routes: drop, slow, silent, error):
        drop      close the client's connection instead of answering
                  (CLI: the process dies of SIGKILL)
        slow      answer after `delay` s (other requests go on meanwhile)
        silent    never answer that request (CLI: hang until killed)
        error     fs: ok:false "<op>: <strerror> (os error N)"; exec:
                  core.exec.failed kind "other"; CLI: rc 1 "error: injected fault";
                  cloud: 500 {"code": "internal", "message": "injected fault"}
        unready   the next `count` connections to agent.sock are accepted
                  but never get the handshake (prefix ignored)
        garbage   answer with a frame whose body is not CBOR (CLI: junk on
                  stdout, rc 0)
        oversize  answer with a frame header claiming 5 MiB (CLI: 5 MiB junk)
        crash     (prefix "boot") the next sandbox process exits before its
                  agent relay is up: create and start fail as msb's do, and
                  the sandbox stays, stopped
  POST /_emu/fault/clear
  GET  /_emu/sandboxes   [{"name", "status", "pid", "dir", "socket"}]
  GET  /_emu/sandbox/{name}   one of those (dir = the rootfs, for tests)

Knobs: --delay (each lifecycle step: boot, stop), --generation (the ready
frame's and every answer's "v"; 7 by default, 9 as 0.7.x sends), --split
(every socket write goes out in random small pieces with tiny sleeps, so a
client must reassemble frames).  The ready payload always carries an extra
unknown field ("emulator"), which clients must ignore.

Deviations (deliberate; keep them in mind):
  * No VM: commands run as root in a bwrap keeper with the host's /usr
    (read-only); the image is never pulled.  An OCI reference gives an empty
    skeleton root, a directory image (./rootfs, /abs) is copied into the
    root at create.  --cpus/--memory are recorded, not enforced.
  * The fs API sees the sandbox directory only: /usr, /proc and /dev are
    empty placeholders there, while commands see the real ones.
  * agentd's fatal errors (unknown message type, broken envelope) close only
    the offending connection; the real agentd exits and the sandbox dies.
    core.tcp.connect always gets core.tcp.failed; generation 8/9 message
    types are known but ignored (no client that does not offer bulk gets
    bulk frames, so none are sent).
  * exec: a user name is looked up in the sandbox's /etc/passwd; the env is
    PATH and HOME plus the request's (the real agentd also passes its own
    environment on).  As in agentd's piped path (Command::spawn), a missing
    cwd gives kind "not_found" (ENOENT) and a cwd that is a file "bad_cwd"
    (ENOTDIR), both with stage "Command::spawn"; with a tty the stage is
    "execvp" and a bad cwd is ignored.
  * pause freezes the sandbox's exec processes (SIGSTOP) and holds every
    request until resume; new connections still get the handshake (the
    relay is on the host).  inspect's "pause" stays null (its shape when
    paused is unknown); "active_config" is null as for a stopped sandbox.
  * CLI: only the subcommands above (the others exit 2, "does not
    implement"); their options as in 0.7.2 --help except the image-building
    ones (--volume, --port... are accepted and ignored; --script, --copy,
    --mount-* ... are "unexpected argument").  --help texts are shortened.
    Taken from the sources, not seen (no KVM here): rm of a running sandbox
    ("sandbox still running: cannot remove sandbox 'N': still running") and
    start of a running one ("... cannot start sandbox 'N': already running").
    stop -t N gives up after N s with an error text of our own.  Success
    lines never carry the real " (1.2s)" duration suffix.

Needs root and bwrap (unprivileged bwrap would nest a user namespace); only
Debian's python3 has cbor2 and aiohttp, so it runs with /usr/bin/python3.
"""

import contextlib
import json
import os
import re
import signal
import sys
import time

from microsandbox_cli import Cli, Exists, Failure, cli_main, sandbox_config
from microsandbox_home import (FAULT_KINDS, HERE, LIVE, Home, alive, iso_ns, log,
                               proc_start, read_json, valid_name, write_json)

# What microsandbox_cloud.py, given this module as its `ms`, calls through it.
__all__ = ["Cli", "Exists", "Failure", "Home", "LIVE", "iso_ns", "read_json",
           "sandbox_config", "valid_name", "write_json"]


# ============================================================ sandbox process

def sandbox_main(argv):
    import argparse
    import asyncio
    ap = argparse.ArgumentParser(prog="microsandbox.py sandbox")
    ap.add_argument("name")
    ap.add_argument("--home", required=True)
    ap.add_argument("--fresh", action="store_true")
    args = ap.parse_args(argv)
    os.chdir("/")
    os.umask(0o022)
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    home = Home(args.home)
    f = home.take_fault("boot", ("crash",))
    if f is not None:
        # The VM dies before its agent relay is up (no KVM, a bad image):
        # msb says so and keeps the sandbox, stopped.
        log("sandbox %s: injected boot failure" % args.name)
        return 1
    return asyncio.run(SandboxProcess(home, args.name, args.fresh).run())


class SandboxProcess:
    """The hidden `msb sandbox` process: root, keeper, relay, lifecycle."""

    def __init__(self, home, name, fresh):
        import common
        import microsandbox_agent as agent_mod
        self.common, self.agent_mod = common, agent_mod
        self.home, self.name, self.fresh = home, name, fresh
        self.cfg = home.config()
        self.record = home.record(name)
        self.rootfs = home.p("sandboxes", name, "rootfs")
        self.layout = sandbox_layout()
        self.keeper = common.Keeper(self.layout)
        self.sock_dir, self.links = home.sockets(name)
        self.servers = []
        self.stopping = None            # "graceful" or "force" once asked to stop
        self.started_ns = None          # when it first ran (the cloud's started_at)
        self.stop_event = None

    def write_state(self, status):
        pid, now = os.getpid(), time.time_ns()
        if status == "Running" and not self.started_ns:
            self.started_ns = now
        write_json(os.path.join(self.home.sdir(self.name), "state.json"), {
            "pid": pid, "start": proc_start(pid), "status": status, "updated_ns": now,
            "started_ns": self.started_ns,
            "stopped_ns": now if status == "Stopped" else None})

    async def run(self):
        import asyncio
        log("sandbox %s: starting (pid %d)" % (self.name, os.getpid()))
        self.write_state("Starting")
        self.stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig, how in ((signal.SIGTERM, "graceful"), (signal.SIGINT, "graceful"),
                         (signal.SIGQUIT, "force")):
            loop.add_signal_handler(sig, self.request_stop, how)
        loop.add_signal_handler(signal.SIGUSR1, self.pause, True)
        loop.add_signal_handler(signal.SIGUSR2, self.pause, False)
        try:
            await self.boot()
        except Exception as e:  # noqa: BLE001 - any failure ends the boot
            log("sandbox %s: boot failed: %r" % (self.name, e))
            await self.shutdown()
            return 1
        if self.stopping is None:
            self.relay.ready.set()
            self.write_state("Running")
            log("sandbox %s: running" % self.name)
            watch = asyncio.ensure_future(self.watch_hub())
            await self.stop_event.wait()
            watch.cancel()
        await self.shutdown()
        return 0

    async def boot(self):
        import asyncio
        cfg, rec = self.cfg, self.record
        if rec is None:
            raise RuntimeError("no record for sandbox %s" % self.name)
        runtime = rec["config"]["runtime"]
        if self.fresh or not os.path.isdir(self.rootfs):
            await asyncio.get_running_loop().run_in_executor(None, self.build_root)
        self.agent = self.agent_mod.Agent(
            self.rootfs, self.layout.token, self.home, int(cfg["generation"]), bool(cfg["split"]),
            user=runtime.get("user"), workdir=runtime.get("workdir"),
            on_shutdown=lambda: self.request_stop("graceful"))
        t0 = time.monotonic_ns()
        self.relay = self.agent_mod.Relay(self.agent, None)
        await self.bind_sockets()
        await asyncio.sleep(float(cfg["delay"]))        # the VM boots
        await self.keeper.start_keeper(self.rootfs, hostname_of(self.name, runtime))
        boot = time.monotonic_ns() - t0
        self.relay.ready_payload = {
            "boot_time_ns": boot, "init_time_ns": boot // 2, "ready_time_ns": boot,
            "agent_version": self.agent_mod.AGENT_VERSION,
            "emulator": {"name": "sbxfs microsandbox emulator", "note": "ignore me"}}

    def build_root(self):
        import shutil
        shutil.rmtree(self.rootfs, ignore_errors=True)
        image = self.record["config"]["image"]
        if "Bind" in image:
            shutil.copytree(image["Bind"]["path"], self.rootfs, symlinks=True)
        else:
            os.makedirs(self.rootfs)
        self.layout.populate(self.rootfs, reuse="Bind" in image)

    async def bind_sockets(self):
        import asyncio
        os.makedirs(self.sock_dir, exist_ok=True)
        agent_sock = os.path.join(self.sock_dir, "agent.sock")
        control_sock = os.path.join(self.sock_dir, "control.sock")
        for path in (agent_sock, control_sock) + self.links:
            with contextlib.suppress(OSError):
                os.unlink(path)

        async def placeholder(reader, writer):
            writer.close()
        self.servers.append(await asyncio.start_unix_server(self.relay.serve, agent_sock))
        self.servers.append(await asyncio.start_unix_server(placeholder, control_sock))
        rel = os.path.join("..", "sandboxes", os.path.basename(self.sock_dir))
        os.symlink(os.path.join(rel, "agent.sock"), self.links[0])
        os.symlink(os.path.join(rel, "control.sock"), self.links[1])

    def request_stop(self, how):
        if self.stopping != "force":
            self.stopping = how
        self.stop_event.set()

    def pause(self, pausing):
        if self.stopping or not hasattr(self, "agent"):
            return
        if pausing:
            self.agent.pause()
            self.write_state("Paused")
        else:
            self.agent.resume()
            self.write_state("Running")

    async def watch_hub(self):
        """Stop once the hub that configured this home is gone."""
        import asyncio
        pid, start = self.cfg.get("hub_pid"), self.cfg.get("hub_start")
        if not pid:
            return
        while alive(pid, start):
            await asyncio.sleep(0.5)
        log("sandbox %s: the hub is gone" % self.name)
        self.request_stop("force")

    async def shutdown(self):
        import asyncio
        self.write_state("Draining")
        if hasattr(self, "agent"):
            self.agent.resume()
            self.agent.kill_all()
        if hasattr(self, "relay"):
            self.relay.close_all()
        for server in self.servers:
            server.close()
        await self.keeper.stop()
        if self.stopping != "force":
            await asyncio.sleep(float(self.cfg["delay"]))
        for path in self.links + (os.path.join(self.sock_dir, "agent.sock"),
                                  os.path.join(self.sock_dir, "control.sock")):
            with contextlib.suppress(OSError):
                os.unlink(path)
        self.write_state("Stopped")
        log("sandbox %s: stopped" % self.name)


def hostname_of(name, runtime):
    if runtime.get("hostname"):
        return runtime["hostname"]
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63] or "sandbox"


def sandbox_layout():
    """common.HostLayout with the skeleton of a microsandbox guest (a
    function: common imports aiohttp, which the CLI does without)."""
    import common

    class Layout(common.HostLayout):
        token = "msb-emu-" + os.urandom(12).hex()      # the spawner's socket

        def keeper_argv(self, root, hostname, info_fd):
            import microsandbox_exec
            return microsandbox_exec.spawner_argv(
                super().keeper_argv(root, hostname, info_fd), self.token, root)

        def populate(self, root, reuse=False):
            etc = {"passwd": "root:x:0:0:root:/root:/bin/sh\n"
                             "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                   "group": "root:x:0:\nnogroup:x:65534:\n",
                   "hosts": "127.0.0.1 localhost\n::1 localhost\n",
                   "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n"}
            if reuse:           # an image's own /etc wins
                etc = {k: t for k, t in etc.items()
                       if not os.path.exists(os.path.join(root, "etc", k))}
            self.make_skeleton(root, (
                ("tmp", 0o1777), ("root", 0o700), ("etc", 0o755), ("proc", 0o555),
                ("dev", 0o755), ("usr", 0o755), ("home", 0o755), ("var", 0o755),
            ), etc, reuse=reuse)
    return Layout()


# ============================================================ the hub

def hub_main(argv):
    import common
    ap = common.argument_parser(__doc__, "MSB_HOME of the emulated sandboxes")
    ap.set_defaults(delay=0.05)
    ap.add_argument("--generation", type=int, default=7, choices=(7, 8, 9),
                    help="the agent protocol generation (ready frame's v)")
    ap.add_argument("--split", action="store_true",
                    help="split every socket write into small random pieces")
    ap.add_argument("--cloud-key", help="also serve the cloud REST API and agent "
                    "WebSocket (microsandbox_cloud.py), for this Bearer key")
    args = ap.parse_args(argv)
    args.tls = common.tls_context(ap, args)   # the cloud API over HTTPS and WSS
    common.run(Hub(args).main, args, "sandbox commands")
    return 0


class Hub:
    def __init__(self, args):
        self.args = args
        self.home = Home(args.root)
        self.offset = 0

    async def main(self, args):
        import common
        from aiohttp import web
        home = self.home
        home.ensure()
        write_json(home.p("emu", "config.json"), {
            "delay": args.delay, "generation": args.generation, "split": args.split,
            "hub_pid": os.getpid(), "hub_start": proc_start(os.getpid())})
        home.set_faults(lambda faults: [])
        self.offset = self.log_size()
        app = web.Application()
        for method, path, handler in (
                ("GET", "/_emu/stats", self.stats), ("POST", "/_emu/reset", self.reset),
                ("POST", "/_emu/fault", self.fault),
                ("POST", "/_emu/fault/clear", self.fault_clear),
                ("GET", "/_emu/sandboxes", self.sandboxes),
                ("GET", "/_emu/sandbox/{name}", self.sandbox)):
            app.router.add_route(method, path, handler)
        if args.cloud_key:
            import microsandbox_cloud
            microsandbox_cloud.Cloud(self, sys.modules[__name__], args.cloud_key).install(app)
        await common.serve(app, args.port, lambda port: "microsandbox emulator on "
                           "127.0.0.1:%d, MSB_HOME=%s" % (port, home.path), self.shutdown,
                           args.tls)

    def log_size(self):
        try:
            return os.path.getsize(self.home.p("emu", "requests.log"))
        except OSError:
            return 0

    async def stats(self, request):
        from aiohttp import web
        counts = {}
        try:
            with open(self.home.p("emu", "requests.log"), "rb") as f:
                f.seek(self.offset)
                for line in f.read().decode(errors="replace").splitlines():
                    counts[line] = counts.get(line, 0) + 1
        except OSError:
            pass
        return web.json_response(dict(counts, total=sum(counts.values()), routes=counts))

    async def reset(self, request):
        from aiohttp import web
        self.offset = self.log_size()
        return web.json_response({"ok": True})

    async def fault(self, request):
        from aiohttp import web
        try:
            f = json.loads(await request.text())
            assert isinstance(f, dict) and f.get("kind") in FAULT_KINDS
            f["count"] = int(f.get("count", 1))
            f["prefix"] = str(f.get("prefix") or "")
            f["delay"] = float(f.get("delay", 1.0))
            f["errno"] = int(f.get("errno", 5))
        except Exception:  # noqa: BLE001 - any bad fault is a 400
            return web.json_response({"error": "bad fault"}, status=400)
        faults = self.home.set_faults(lambda faults: faults + [f])
        return web.json_response({"ok": True, "faults": len(faults)})

    async def fault_clear(self, request):
        from aiohttp import web
        self.home.set_faults(lambda faults: [])
        return web.json_response({"ok": True})

    def view(self, name):
        st = self.home.state(name)
        sock_dir, _ = self.home.sockets(name)
        status = self.home.status(name)
        return {"name": name, "status": status,
                "pid": st.get("pid") if status in LIVE else None,
                "dir": self.home.p("sandboxes", name, "rootfs"),
                "socket": os.path.join(sock_dir, "agent.sock")}

    async def sandboxes(self, request):
        from aiohttp import web
        return web.json_response([self.view(n) for n in sorted(self.home.names())])

    async def sandbox(self, request):
        from aiohttp import web
        name = request.match_info["name"]
        if self.home.record(name) is None:
            return web.json_response({"error": "no such sandbox"}, status=404)
        return web.json_response(self.view(name))

    async def shutdown(self):
        """Stop every live sandbox process of this home, and wait for them."""
        import asyncio
        pids = []
        for name in self.home.names():
            st = self.home.state(name)
            if alive(st.get("pid"), st.get("start")):
                pids.append((st["pid"], st["start"]))
                with contextlib.suppress(ProcessLookupError):
                    os.kill(st["pid"], signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while any(alive(*p) for p in pids) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for pid, start in pids:
            if alive(pid, start):
                log("sandbox process %d did not stop; killing it" % pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


# ============================================================ main

def main(argv):
    if argv[:1] == ["cli"]:
        return cli_main(argv[1:])
    if argv[:1] == ["sandbox"]:
        sys.path.insert(0, HERE)
        return sandbox_main(argv[1:])
    sys.path.insert(0, HERE)
    return hub_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
