"""The fake `msb` of the microsandbox emulator: clap's parse of the
subcommands (their options, usage errors and --help texts as 0.7.2's) and
the commands themselves, on MSB_HOME (microsandbox_home.py).  microsandbox.py
runs cli_main() for `microsandbox.py cli ARGS...` (tests/emulators/bin/msb);
see its docstring for the subcommands and the deviations.  The cloud
stand-in (microsandbox_cloud.py) drives sandboxes through Cli too."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time

from microsandbox_home import (LIVE, SCRIPT, VERSION, Home, alive, iso_ns, valid_name,
                               write_json)


# ============================================================ CLI: parsing

class Usage(Exception):
    """A clap error: the whole stderr text, exit code 2."""


class Failure(Exception):
    """A runtime error: "error: <text>", exit code 1."""


class Exists(Failure):
    """The name is taken."""


def threading_id():
    import threading
    return threading.get_ident()


class Opt:
    def __init__(self, long, short=None, value=None, multiple=False, check=None,
                 possible=None, help=""):
        self.long, self.short, self.value = long, short, value
        self.multiple, self.check, self.possible, self.help = multiple, check, possible, help

    @property
    def shown(self):
        return "--%s <%s>" % (self.long, self.value) if self.value else "--" + self.long


def u8(v):
    if not v.isdigit():
        raise ValueError("invalid digit found in string")
    if int(v) > 255:
        raise ValueError("%s is not in 0..=255" % v)
    return int(v)


def u64(v):
    if not v.isdigit():
        raise ValueError("invalid digit found in string")
    return int(v)


QUIET = Opt("quiet", "q", help="Suppress progress output")
LABELS = Opt("label", None, "LABEL", True, help="Select sandboxes carrying this label "
             "(`KEY=VALUE`). Repeatable; AND-matched")
FORMAT = Opt("format", None, "FORMAT", possible=("json",), help="Output format (json)")
GLOBAL = [Opt(n, help="Show %s diagnostic logs" % n) for n in
          ("error", "warn", "info", "debug", "trace")] + \
    [Opt("tree", help="Print the full command tree and exit")]
IGNORED_CREATE = [Opt(*a, multiple=True) for a in (
    ("volume", "v", "VOLUME"), ("port", "p", "PORT"), ("tmpfs", None, "TMPFS"),
    ("entrypoint", None, "ENTRYPOINT"), ("log-level", None, "LOG_LEVEL"),
    ("security", None, "SECURITY"), ("root-disk", None, "SPEC"))] + \
    [Opt("no-net", help="Disable networking")]

# name -> (description, positional (name, required: True | False | "label",
#          multiple) or None, options)
COMMANDS = {
    "create": ("Create a sandbox and boot it in the background",
               ("IMAGE", False, False), [
                   Opt("name", "n", "NAME", help="Name for the sandbox. Auto-generated "
                       "if omitted. Maximum 128 UTF-8 bytes"),
                   Opt("cpus", "c", "CPUS", check=u8, help="Number of virtual CPUs to "
                       "allocate"),
                   Opt("max-cpus", None, "MAX_CPUS", check=u8,
                       help="Boot-time maximum possible virtual CPUs"),
                   Opt("memory", "m", "MEMORY", help="Amount of memory to allocate "
                       "(e.g. 512M, 1G)"),
                   Opt("max-memory", None, "SIZE", help="Boot-time maximum hotpluggable "
                       "memory (e.g. 1G, 8G)"),
                   Opt("workdir", "w", "WORKDIR", help="Set the default working "
                       "directory for commands"),
                   Opt("shell", None, "SHELL", help="Shell to use for interactive "
                       "sessions (default: /bin/sh)"),
                   Opt("env", "e", "ENV", True, help="Set an environment variable "
                       "(KEY=value)"),
                   Opt("label", None, "KEY[=VALUE]", True, help="Attach a label to the "
                       "sandbox (`KEY=VALUE`, or bare `KEY`). Repeatable"),
                   Opt("replace", help="Replace an existing sandbox with the same name"),
                   QUIET,
                   Opt("hostname", "H", "HOSTNAME", help="Set the guest hostname"),
                   Opt("user", "u", "USER", help="Run commands as the specified user "
                       "(e.g. nobody, 1000, 1000:1000)"),
                   Opt("pull", None, "PULL", help="When to pull the image: always, "
                       "if-missing (default), never"),
                   Opt("max-duration", None, "MAX_DURATION", help="Kill the sandbox "
                       "after this duration (e.g. 30s, 5m, 1h)"),
                   Opt("idle-timeout", None, "IDLE_TIMEOUT", help="Stop the sandbox "
                       "after this period of inactivity (e.g. 30s, 5m, 1h)"),
               ] + IGNORED_CREATE),
    "start": ("Start a stopped sandbox", ("NAMES", "label", True),
              [LABELS, QUIET]),
    "stop": ("Stop one or more running sandboxes", ("NAMES", "label", True), [
        LABELS, Opt("force", "f", help="Immediately kill the sandbox without graceful "
                    "shutdown"),
        Opt("timeout", "t", "TIMEOUT", check=u64, help="Graceful completion budget in "
            "seconds; timeout fails without killing. Omit to wait indefinitely"),
        QUIET]),
    "remove": ("Remove one or more sandboxes", ("NAMES", "label", True), [
        LABELS, Opt("force", "f", help="Stop the sandbox if running, then remove it"),
        QUIET]),
    "list": ("List all sandboxes", None, [
        Opt("running", help="Show only running sandboxes"),
        Opt("stopped", help="Show only stopped sandboxes"), LABELS, FORMAT,
        Opt("quiet", "q", help="Show only sandbox names")]),
    "status": ("Show sandbox status", ("NAME", False, False), [
        Opt("all", "a", help="Show all sandboxes, not just running ones"), LABELS, FORMAT,
        Opt("quiet", "q", help="Show only sandbox names")]),
    "inspect": ("Show detailed sandbox configuration and status",
                ("NAME", True, False), [FORMAT]),
    "pause": ("Suspend a resident sandbox without creating a snapshot",
              ("NAME", True, False), [Opt("guest-flush", None, "GUEST_FLUSH",
                                          help="Optional guest writeback: auto, "
                                          "required, or skip"), QUIET]),
    "resume": ("Resume a user-paused resident sandbox", ("NAME", True, False),
               [QUIET]),
}
ALIASES = {"ls": "list", "rm": "remove", "ps": "status"}
STATS_KEY = {"list": "ls", "remove": "rm"}
NOT_EMULATED = ("run", "restore", "modify", "mod", "branch", "restart", "ping", "touch",
                "metrics", "exec", "copy", "cp", "logs", "ssh", "sandbox", "sbx", "image",
                "pull", "load", "save", "registry", "volume", "vol", "snapshot", "snap",
                "install", "uninstall", "doctor", "update", "upgrade", "downgrade", "self",
                "completion", "context", "ctx")
MORE = "\n\nFor more information, try '--help'.\n"
TOP_USAGE = "msb [OPTIONS] <COMMAND>"


def positional_shown(pos, given):
    name, required, multiple = pos
    text = "<%s>" % name if given or required is True else "[%s]" % name
    return text + ("..." if multiple else "")


class Parser:
    """clap's parse of one subcommand's arguments, with clap's error texts
    (usage lines show the arguments used so far, as clap's do)."""

    def __init__(self, canon):
        self.canon = canon
        _, self.pos, opts = COMMANDS[canon]
        self.by_long = {o.long: o for o in opts + GLOBAL}
        self.by_short = {o.short: o for o in opts + GLOBAL if o.short}
        self.values, self.positionals, self.used = {}, [], []

    def parse(self, argv):
        """(values by option long name, positionals)."""
        args = list(argv)
        while args:
            a = args.pop(0)
            if a == "--":
                for rest in args:
                    self.positional(rest)
                break
            if a == "-" or not a.startswith("-"):
                self.positional(a)
            elif a in ("-h", "--help"):
                raise HelpRequested()
            else:
                self.option(a, args)
        pos = self.pos
        if pos and pos[1] and not self.positionals and \
                not (pos[1] == "label" and self.values.get("label")):
            self.fail("the following required arguments were not provided:\n  %s"
                      % positional_shown(pos, True), self.usage(True))
        return self.values, self.positionals

    # ------------------------------------------------------------ usage

    def default_usage(self):
        return "Usage: msb %s [OPTIONS]%s" % (
            self.canon, " " + positional_shown(self.pos, False) if self.pos else "")

    def usage(self, required_missing=False):
        shown = [o.shown for o in self.used]
        if self.pos and (self.positionals or self.used or required_missing):
            shown.append(positional_shown(self.pos, self.positionals or required_missing))
        return "Usage: msb %s %s" % (self.canon, " ".join(shown)) if shown \
            else self.default_usage()

    def fail(self, text, usage=None):
        raise Usage("error: %s%s%s" % (text, "\n\n" + usage if usage else "", MORE))

    def unexpected(self, token):
        tip = "\n\n  tip: to pass '%s' as a value, use '-- %s'" % (token, token) \
            if self.pos else ""
        self.fail("unexpected argument '%s' found%s" % (token, tip), self.usage())

    # ------------------------------------------------------------ arguments

    def positional(self, a):
        if self.pos is None or (self.positionals and not self.pos[2]):
            self.fail("unexpected argument '%s' found" % a, self.default_usage())
        self.positionals.append(a)

    def lookup(self, token):
        if token.startswith("--"):
            return self.by_long.get(token[2:].partition("=")[0])
        return self.by_short.get(token[1:2])

    def option(self, a, args):
        o = self.lookup(a)
        if o is None:
            self.unexpected(a.partition("=")[0] if a.startswith("--") else a[:2])
        inline = None
        if a.startswith("--"):
            inline = a.partition("=")[2] if "=" in a else None
        elif len(a) > 2:
            if o.value:
                inline = a[2:]                      # -c2
            else:
                args.insert(0, "-" + a[2:])         # -fq
        if o.value:
            self.store(o, self.value(o, inline, args))
        else:
            self.values[o.long] = True
        if o not in self.used:
            self.used.append(o)

    def value(self, o, inline, args):
        """The option's value, from "=..." or the next argument, checked."""
        if inline is None:
            if args and not (args[0].startswith("-") and len(args[0]) > 1):
                inline = args.pop(0)
            elif args and self.lookup(args[0]) is None:
                self.unexpected(args[0])
            else:
                self.fail("a value is required for '%s' but none was supplied%s"
                          % (o.shown, possible(o)))
        if o.possible and inline not in o.possible:
            self.fail("invalid value '%s' for '%s'%s" % (inline, o.shown, possible(o)))
        try:
            return o.check(inline) if o.check else inline
        except ValueError as e:
            self.fail("invalid value '%s' for '%s': %s" % (inline, o.shown, e))

    def store(self, o, value):
        if o.multiple:
            self.values.setdefault(o.long, []).append(value)
        elif o.long in self.values:
            self.fail("the argument '%s' cannot be used multiple times" % o.shown,
                      self.default_usage())
        else:
            self.values[o.long] = value


def possible(o):
    return "\n  [possible values: %s]" % ", ".join(o.possible) if o.possible else ""


class HelpRequested(Exception):
    pass


TOP_HELP = """Microsandbox CLI v%s

Usage: msb [OPTIONS] <COMMAND>

Sandboxes:
  create      Create a sandbox and boot it in the background
  start       Start a stopped sandbox
  stop        Stop one or more running sandboxes
  pause       Suspend a resident sandbox without creating a snapshot
  resume      Resume a user-paused resident sandbox
  list        List all sandboxes [aliases: ls]
  status      Show sandbox status [aliases: ps]
  remove      Remove one or more sandboxes [aliases: rm]
  inspect     Show detailed sandbox configuration and status

Other:
  help        Print this message or the help of the given subcommand(s)

Options:
      --tree     Print the full command tree and exit
      --error    Show error-level diagnostic logs
      --warn     Show warning and error diagnostic logs
      --info     Show info, warning, and error diagnostic logs
      --debug    Show debug and higher diagnostic logs
      --trace    Show all diagnostic logs (most verbose)
  -h, --help     Print help
  -V, --version  Print version
""" % VERSION


def command_help(canon):
    about, pos, opts = COMMANDS[canon]
    lines = [about, "", "Usage: msb %s [OPTIONS]%s" % (
        canon, " " + positional_shown(pos, False) if pos else ""), ""]
    if pos:
        lines += ["Arguments:", "  %s" % positional_shown(pos, False), ""]
    lines.append("Options:")
    for o in opts + GLOBAL + [Opt("help", "h", help="Print help")]:
        flag = ("-%s, " % o.short if o.short else "    ") + o.shown[:]
        lines.append("  %-28s %s" % (flag, o.help))
    return "\n".join(lines) + "\n"


# ============================================================ CLI: commands

def success(verb, name):
    sys.stderr.write("   \u2713 %-12s %s\n" % (verb, name))


def error(text):
    sys.stderr.write("error: %s\n" % text)


def parse_size_mib(s):
    """ui::parse_size_mib: 512M, 1G, 1.5G; a bare number is MiB."""
    s = s.strip()
    scale = 1
    if s[-1:] in ("G", "g"):
        s, scale = s[:-1], 1024
    elif s[-1:] in ("M", "m"):
        s = s[:-1]
    try:
        value = float(s.strip()) if scale != 1 else int(s.strip())
    except ValueError:
        raise Failure("invalid size (expected e.g. 512M, 1G): invalid digit found in string")
    return int(value * scale)


def parse_duration(s):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", s.strip())
    if not m:
        raise Failure("invalid digit found in string")
    n, unit = int(m.group(1)), m.group(2) or "s"
    return {"ms": n // 1000, "s": n, "m": n * 60, "h": n * 3600}[unit]


def image_source(image):
    """inspect's config.image: a directory image is Bind, anything else Oci."""
    if image.startswith(("/", "./", "../")) or image in (".", ".."):
        if not os.path.exists(image):
            raise Failure("invalid config: rootfs bind path does not exist: %s" % image)
        if not os.path.isdir(image):
            raise Failure("invalid config: rootfs bind path is not a directory: %s" % image)
        return {"Bind": {"follow_root_symlinks": False, "path": image}}
    return {"Oci": {"reference": image}}


def sandbox_config(name, image, v):
    cpus = v.get("cpus", 1)
    memory = parse_size_mib(v["memory"]) if "memory" in v else 512
    env = []
    for item in v.get("env", []):
        key, sep, value = item.partition("=")
        if not sep:                     # -e KEY: the caller's value
            if key not in os.environ:
                raise Failure("environment variable '%s' not set" % key)
            value = os.environ[key]
        env.append({"key": key, "value": value})
    labels = dict(item.partition("=")[::2] for item in v.get("label", []))
    return {
        "deployment_profile": "single_tenant", "env": env,
        "external_mount_policy": "strict", "image": image_source(image), "init": None,
        "labels": labels,
        "lifecycle": {"ephemeral": False,
                      "idle_timeout_secs": parse_duration(v["idle-timeout"])
                      if "idle-timeout" in v else None,
                      "max_duration_secs": parse_duration(v["max-duration"])
                      if "max-duration" in v else None},
        "manifest_digest": None, "mounts": [], "name": name,
        "network": {"enabled": "no-net" not in v, "max_connections": None, "ports": [],
                    "strict": False, "trust_host_cas": False},
        "patches": [],
        "pull_policy": {"always": "Always", "never": "Never"}.get(v.get("pull"), "IfMissing"),
        "resources": {"cpus": cpus, "max_cpus": max(cpus, v.get("max-cpus", cpus)),
                      "max_memory_mib": max(memory, parse_size_mib(v["max-memory"])
                                            if "max-memory" in v else memory),
                      "memory_mib": memory},
        "rlimits": [],
        "runtime": {"cmd": None, "disable_metrics_sample": False, "entrypoint": None,
                    "hostname": v.get("hostname"), "log_level": None,
                    "metrics_sample_interval_ms": 1000, "scripts": {},
                    "shell": v.get("shell", "/bin/sh"), "user": v.get("user"),
                    "workdir": v.get("workdir")},
        "security_profile": "default",
    }


def image_display(config):
    img = config["image"]
    return img["Bind"]["path"] if "Bind" in img else img["Oci"]["reference"]


class Cli:
    def __init__(self, home):
        self.home = home
        self.cfg = home.config()

    # ------------------------------------------------------------ processes

    def launch(self, name, fresh):
        """Start the sandbox process and wait until its agent is ready;
        None, or the failure text."""
        logs = self.home.p("sandboxes", name, "logs")
        os.makedirs(logs, exist_ok=True)
        with open(os.path.join(logs, "runtime.log"), "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, SCRIPT, "sandbox", name, "--home", self.home.path] +
                (["--fresh"] if fresh else []), stdin=subprocess.DEVNULL, stdout=out,
                stderr=out, start_new_session=True, close_fds=True, cwd="/")
        self.proc = proc                # for a long-lived caller to reap (the hub)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rc = proc.poll()
            st = self.home.state(name)
            if st.get("pid") == proc.pid and st.get("status") == "Running":
                return None
            if rc is not None:
                return "sandbox process exited (exit status: %d) before agent relay " \
                       "became available" % rc
            time.sleep(0.005)
        proc.kill()
        return "timed out waiting for the agent relay"

    def signal_and_wait(self, name, sig, until, timeout=None):
        """Signal the live sandbox process, then wait until `until(status)`."""
        st = self.home.state(name)
        if not alive(st.get("pid"), st.get("start")):
            return True
        with contextlib.suppress(ProcessLookupError):
            os.kill(st["pid"], sig)
        deadline = time.monotonic() + (timeout if timeout is not None else 60)
        while time.monotonic() < deadline:
            if until(self.home.status(name)):
                return True
            time.sleep(0.005)
        return False

    def stop_one(self, name, force, timeout=None):
        if self.home.status(name) == "Crashed":       # its process is gone
            st = self.home.state(name)
            write_json(os.path.join(self.home.sdir(name), "state.json"),
                       dict(st, status="Stopped", updated_ns=time.time_ns()))
        return self.signal_and_wait(name, signal.SIGQUIT if force else signal.SIGTERM,
                                    lambda s: s not in LIVE, timeout)

    def existing(self, names, quiet=False):
        """The names that exist; errors for the others.  (names, failed)."""
        found, failed = [], False
        for n in names:
            if self.home.record(n) is None:
                if not quiet:
                    error("sandbox not found: %s" % n)
                failed = True
            else:
                found.append(n)
        return found, failed

    def by_label(self, names, labels):
        if not labels:
            return names
        want = [tuple(x.partition("=")[::2]) for x in labels]
        extra = [n for n in sorted(self.home.names()) if n not in names and all(
            self.home.record(n)["config"]["labels"].get(k) == v for k, v in want)]
        return names + extra

    # ------------------------------------------------------------ commands

    def create(self, v, pos):
        if not pos:
            raise Failure("missing required sandbox field `image`; provide an image "
                          "argument or set `image` in --conf")
        name = v.get("name", "msb-" + os.urandom(4).hex())
        if not name:
            raise Failure("invalid config: sandbox name is required")
        if not valid_name(name):
            raise Failure("invalid config: sandbox name must start with an alphanumeric and "
                          "contain only alphanumeric, dots, hyphens, and underscores: %s"
                          % name)
        self.check_home()
        config = sandbox_config(name, pos[0], v)
        self.home.ensure()
        if self.home.record(name) is not None and v.get("replace"):
            self.stop_one(name, True)
            self.delete(name)
        self.add_record(name, config)
        with self.home.locked("sandboxes", name, "lock"):
            failure = self.launch(name, fresh=True)
        if failure:
            sys.stderr.write('error: failed to start "%s"\n  \u2192 other: %s\n  \u2192 run '
                             '`msb logs --source system %s` for full diagnostics\n'
                             % (name, failure, name))
            return 1
        if "name" not in v:
            print(name)
        return 0

    def check_home(self):
        """msb derives the agent socket's path from MSB_HOME and refuses a
        home whose socket would not fit in sockaddr_un (checked first)."""
        derived = len(self.home.path) + len("/run/sandboxes/") + 24 + len("/agent.sock")
        if derived >= 108:
            raise Failure("invalid config: sandbox runtime socket path is too long: "
                          "shortest derived path is %d bytes, but Unix socket paths on "
                          "this platform must be shorter than 108 bytes; set MSB_HOME "
                          "to a shorter directory" % derived)

    def add_record(self, name, config):
        """Write the new sandbox's record (atomically: Exists if taken).  The
        record also carries the sandbox's uuid, the cloud API's id."""
        import uuid
        now = time.time_ns()
        record = {"name": name, "config": config, "created_ns": now, "updated_ns": now,
                  "id": str(uuid.uuid4())}
        os.makedirs(self.home.sdir(name), exist_ok=True)
        tmp = os.path.join(self.home.sdir(name), "record.%d.%d.tmp"
                           % (os.getpid(), threading_id()))
        write_json(tmp, record)
        try:
            os.link(tmp, os.path.join(self.home.sdir(name), "record.json"))
        except FileExistsError:
            raise Exists("sandbox already exists: sandbox '%s' already exists; remove it, "
                         "start the stopped sandbox, or recreate with .replace()" % name)
        finally:
            os.unlink(tmp)
        return record

    def start(self, v, pos):
        names, failed = self.existing(self.by_label(pos, v.get("label")), v.get("quiet"))
        for name in names:
            with self.home.locked("sandboxes", name, "lock"):
                msg = self.start_one(name)
            if msg:
                if not v.get("quiet"):
                    error(msg)
                failed = True
            elif not v.get("quiet"):
                success("Started", name)
        return 1 if failed else 0

    def start_one(self, name):
        """None, or why the sandbox did not start."""
        if self.home.status(name) in LIVE:
            return "sandbox still running: cannot start sandbox '%s': already running" % name
        failure = self.launch(name, fresh=False)
        return failure and 'failed to start "%s": %s' % (name, failure)

    def stop(self, v, pos):
        names, failed = self.existing(self.by_label(pos, v.get("label")))
        for name in names:
            with self.home.locked("sandboxes", name, "lock"):
                stopped = self.stop_one(name, v.get("force"), v.get("timeout"))
            if stopped:
                if not v.get("quiet"):
                    success("Stopped", name)
            else:
                error("sandbox '%s' did not stop within %ss" % (name, v.get("timeout")))
                failed = True
        return 1 if failed else 0

    def remove(self, v, pos):
        quiet = v.get("quiet")
        names, failed = self.existing(self.by_label(pos, v.get("label")), quiet)
        for name in names:
            with self.home.locked("sandboxes", name, "lock"):
                removed = self.remove_one(name, v.get("force"))
            if removed is not None:
                if not quiet:
                    error(removed)
                failed = True
            elif not quiet:
                success("Removed", name)
        return 1 if failed else 0

    def remove_one(self, name, force):
        """None, or why the sandbox was not removed."""
        if self.home.status(name) in LIVE:
            if not force:
                return "sandbox still running: cannot remove sandbox '%s': still running" % name
            self.stop_one(name, True)
        self.delete(name)
        return None

    def delete(self, name):
        import shutil
        sock_dir, links = self.home.sockets(name)
        for link in links:
            with contextlib.suppress(OSError):
                os.unlink(link)
        shutil.rmtree(sock_dir, ignore_errors=True)
        shutil.rmtree(self.home.p("sandboxes", name), ignore_errors=True)
        shutil.rmtree(self.home.sdir(name), ignore_errors=True)

    def rows(self, names):
        out = []
        for n in names:
            rec = self.home.record(n)
            if rec is not None:
                out.append((n, rec, self.home.status(n)))
        return out

    def filtered(self, v):
        rows = self.rows(self.home.names())
        for k, want in (tuple(x.partition("=")[::2]) for x in v.get("label", [])):
            rows = [r for r in rows if r[1]["config"]["labels"].get(k) == want]
        return rows

    def list(self, v, pos):
        rows = sorted(self.filtered(v), key=lambda r: -r[1]["created_ns"])
        if v.get("running"):
            rows = [r for r in rows if r[2] == "Running"]
        if v.get("stopped"):
            rows = [r for r in rows if r[2] in ("Stopped", "Crashed")]
        if v.get("format") == "json":
            dump([{"created_at": iso_ns(rec["created_ns"]),
                   "image": image_display(rec["config"]), "name": n, "status": s}
                  for n, rec, s in rows])
        elif v.get("quiet"):
            for n, _, _ in rows:
                print(n)
        elif not rows:
            sys.stderr.write("No sandboxes found.\n")
        else:
            table(["NAME", "IMAGE", "STATUS", "CREATED"], [
                [n, image_display(rec["config"]), s.lower(), time.strftime(
                    "%Y-%m-%d %H:%M:%S", time.localtime(rec["created_ns"] // 10 ** 9))]
                for n, rec, s in rows])
        return 0

    def status(self, v, pos):
        def row(n, rec, s):
            r = rec["config"]["resources"]
            return {"command": "-", "cpus": r["cpus"], "image": image_display(rec["config"]),
                    "max_cpus": r["max_cpus"], "max_memory_mib": r["max_memory_mib"],
                    "memory_mib": r["memory_mib"], "name": n, "ports": [], "status": s,
                    "thp": "madvise"}
        if pos:
            rec = self.home.record(pos[0])
            if rec is None:
                raise Failure("sandbox not found: %s" % pos[0])
            rows = [(pos[0], rec, self.home.status(pos[0]))]
        else:
            rows = sorted(self.filtered(v), key=lambda r: r[0])
            if not v.get("all"):
                rows = [r for r in rows if r[2] in LIVE]
        if v.get("format") == "json":
            dump(row(*rows[0]) if pos else [row(*r) for r in rows])
        elif v.get("quiet"):
            for n, _, _ in rows:
                print(n)
        elif not rows:
            sys.stderr.write("No sandboxes found.\n" if v.get("all") else
                             "No running sandboxes.\n")
        else:
            table(["NAME", "IMAGE", "COMMAND", "CPUS", "MEM", "STATUS", "PORTS"], [
                [d["name"], d["image"], "-", "%d / %d" % (d["cpus"], d["max_cpus"]),
                 "%d MiB / %d MiB" % (d["memory_mib"], d["max_memory_mib"]),
                 d["status"].lower(), "-"] for d in (row(*r) for r in rows)])
        return 0

    def inspect(self, v, pos):
        name = pos[0]
        rec = self.home.record(name)
        if rec is None:
            raise Failure("sandbox not found: %s" % name)
        st = self.home.state(name)
        updated = max(rec["updated_ns"], st.get("updated_ns", 0))
        status = self.home.status(name)
        if v.get("format") == "json":
            dump({"active_config": None, "config": rec["config"],
                  "created_at": iso_ns(rec["created_ns"]), "name": name, "pause": None,
                  "pending_changes": [], "status": status, "updated_at": iso_ns(updated)})
            return 0
        c = rec["config"]
        local = lambda ns: time.strftime("%Y-%m-%d %H:%M:%S",  # noqa: E731
                                         time.localtime(ns // 10 ** 9))
        out = ["%-16s%s" % ("Name:", name), "%-16s%s" % ("Status:", status.lower()),
               "%-16s%s" % ("Created:", local(rec["created_ns"])),
               "%-16s%s" % ("Updated:", local(updated)),
               "%-16s%s" % ("Image:", image_display(c)), "", "Resources",
               "  %-14s%d" % ("CPUs:", c["resources"]["cpus"]),
               "  %-14s%d MiB" % ("Memory:", c["resources"]["memory_mib"]),
               "%-16s%s" % ("Workdir:", c["runtime"]["workdir"] or "-"),
               "%-16s%s" % ("Shell:", c["runtime"]["shell"])]
        if c["env"]:
            out += ["", "Environment"] + ["  %s=%s" % (e["key"], e["value"]) for e in c["env"]]
        print("\n".join(out))
        return 0

    def pause(self, v, pos, resume=False):
        name = pos[0]
        if self.home.record(name) is None:
            raise Failure("sandbox not found: %s" % name)
        if self.home.status(name) not in ("Running", "Paused"):
            raise Failure('sandbox sandbox "%s" has no live runtime' % name)
        want = "Running" if resume else "Paused"
        self.signal_and_wait(name, signal.SIGUSR2 if resume else signal.SIGUSR1,
                             lambda s: s == want or s not in LIVE)
        if not v.get("quiet"):
            success("Resumed" if resume else "Paused", name)
        return 0

    def resume(self, v, pos):
        return self.pause(v, pos, resume=True)


def dump(data):
    print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


def table(headers, rows):
    """ui::Table: columns padded to their widest cell plus 4 spaces."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    for line in [headers] + rows:
        print("".join(c.ljust(widths[i] + 4) if i < len(line) - 1 else c
                      for i, c in enumerate(line)))


def apply_cli_fault(home, key):
    """Apply the fault armed for this invocation: None to go on, else the
    exit code."""
    f = home.take_fault(key)
    if f is None:
        return None
    kind = f["kind"]
    if kind == "slow":
        time.sleep(float(f.get("delay", 1.0)))
        return None
    if kind == "drop":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "silent":                # hang until killed, or the hub is gone
        cfg = home.config()
        while not cfg["hub_pid"] or alive(cfg["hub_pid"], cfg["hub_start"]):
            time.sleep(0.5)
        return 1
    if kind in ("garbage", "oversize"):
        sys.stdout.buffer.write(b"\x00\xff{garbage[" if kind == "garbage"
                                else b"x" * (5 * 1024 * 1024))
        return 0
    error("injected fault")
    return 1


def cli_main(argv):
    home = Home(os.environ.get("MSB_HOME") or os.path.expanduser("~/.microsandbox"))
    args = list(argv)
    while args and args[0] in ("--" + o.long for o in GLOBAL):
        args.pop(0)                                     # msb --debug ls
    first = args[0] if args else None
    if first in (None, "-h", "--help", "help"):
        key, canon = "help", None
    elif first in ("-V", "--version"):
        key, canon = "version", None
    else:
        canon = ALIASES.get(first, first)
        key = STATS_KEY.get(canon, canon) if canon in COMMANDS else "unknown"
    os.makedirs(home.emu, exist_ok=True)
    home.count("cli." + key)
    rc = apply_cli_fault(home, "cli." + key)
    if rc is not None:
        return rc
    if key == "help":
        sys.stdout.write(TOP_HELP)
        return 0
    if key == "version":
        print("msb " + VERSION)
        return 0
    try:
        if canon not in COMMANDS:
            if first.startswith("-"):
                raise Usage("error: unexpected argument '%s' found\n\nUsage: %s%s"
                            % (first, TOP_USAGE, MORE))
            if first in NOT_EMULATED:
                raise Usage("error: the microsandbox emulator does not implement `msb %s`\n"
                            % first)
            raise Usage("error: unrecognized subcommand '%s'\n\nUsage: %s%s"
                        % (first, TOP_USAGE, MORE))
        try:
            values, pos = Parser(canon).parse(args[1:])
        except HelpRequested:
            sys.stdout.write(command_help(canon))
            return 0
        return getattr(Cli(home), canon)(values, pos)
    except Usage as e:
        sys.stderr.write(str(e))
        return 2
    except Failure as e:
        error(str(e))
        return 1
