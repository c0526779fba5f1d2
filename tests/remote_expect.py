"""The table of tests/test_remote.py: for each remote provider, how its
emulator injects faults and what its operations cost.  Kept apart so that
the tests and the table each stay readable; test_remote.py's docstring
says what the tests check.
"""

import errno

from helpers import Emulator


def fault(**kw):
    return kw


# ------------------------------------------------------------ the table
#
# For each provider:
#   secret     the credential that must never show (None: there is none)
#   silent     cases of a server that stops answering: the fault, the
#              operation on tmp/NAME (stat, read, listdir) or on status,
#              whether NAME exists on the server first, the errnos
#              allowed, the bound in seconds, the requests the operation
#              may make (None: not counted), a text err must hold
#   interrupt  the fault that makes a read of a file hang, and how long
#              the reader may take to end after Ctrl-C
#   ctl_hang   the fault that makes `echo stop > ctl` hang
#   uploads    faults injected in turn before each write (None: no
#              fault), the number of writes and their size
#   leaks      faults and the operation (and its file in tmp; "": tmp
#              itself) each is injected under before the secret is
#              looked for
#   errors     faults, the operation, the file it is done on (e: written
#              through the mount, s: written on the server, nope: absent)
#              and the errno expected (0: the call succeeds, retried), with
#              texts err must then hold
#   warm       a command run first, so that the transport is open
#   ls         requests of `ls -l` of a 20-file directory made on the
#              server: (routes, comparison, n), () being the total
#   download   the route that fetches a file's content; no_read: routes
#              that a read must not use; download_is_script: the route
#              is the scripts' too, so downloads are not counted apart
#   upload     the route that sends a file's content (None: not counted);
#              no_write: routes that a write must not use
#   exec       requests of a short command (None: not counted here)
#   walk       requests of a cold find of a 40-directory tree made on the
#              server: the lookups of the path to it, one subtree listing
#              and one statfs, whatever the number of directories
#   script     requests of one script (POSIX over a shell)
#   lookups    requests of a cold stat of a path nine names deep
#   along      a lookup that finds a directory lists it (getattr_list)
#   links      the tree shows symlinks [True]
#   rounds     prefetch rounds (scripts) of a grep -r over 4.7 MiB of
#              small files [3]
#   loop       faults of the fault loop, one injected before each round:
#              a server error, a dropped connection, an unanswered request

DAYTONA = dict(
    secret=Emulator.API_KEY,
    silent=[dict(fault=fault(kind="slow", delay=30, prefix="/toolbox",
                             method="GET", count=100),
                 op="stat", on_server=False, errnos=(errno.ETIMEDOUT,),
                 within=120, requests=1, err=None)],
    interrupt=(fault(kind="slow", delay=60, prefix="/toolbox", method="GET",
                     count=100), 4),
    ctl_hang=fault(kind="slow", delay=60, prefix="/api/sandbox",
                   method="POST", count=100),
    uploads=dict(faults=[
        [fault(kind="drop", prefix="/toolbox", method="POST", count=1)],
        [fault(kind="empty", status=502, prefix="/toolbox", method="POST",
               count=4)],
        None], rounds=12, size=2000),
    leaks=[(fault(kind="status", status=401, prefix="/toolbox", count=1),
            "listdir", "")],
    errors=[
        # Format 2 with a body (daemon c.Error): 500 -> EIO, message in err.
        ([fault(kind="status", status=500, prefix="/toolbox", method="POST",
                count=1)], "mkdir", "m1", errno.EIO, ["500"]),
        # An empty body (daemon AbortWithError): the status decides.
        ([fault(kind="empty", status=403, prefix="/toolbox", method="POST",
                count=1)], "mkdir", "m2", errno.EACCES, []),
        # Format 1 from the main API: 404 on an unknown sandbox.
        ([], "stat_box", "no-such-box", errno.ENOENT, []),
        # 429 and 5xx are retried.
        ([fault(kind="ratelimit", prefix="/toolbox", method="GET",
                count=2)], "stat", "nope", errno.ENOENT, []),
        ([fault(kind="status", status=503, prefix="/toolbox", method="GET",
                count=2)], "read", "e", 0, []),
    ],
    warm=False,
    ls=[(("POST /process/execute",), "==", 1), (("GET /files",), "==", 0),
        (("GET /files/info",), "<=", 3), ((), "<=", 5)],
    download="GET /files/download", no_read=(),
    upload="POST /files/bulk-upload", no_write=("POST /files/upload",),
    # The state, a new session (later commands reuse it, and then the
    # state too), the exec, a read of its log and, for a command that has
    # not ended by then (here, on loopback, most), its log stream: no
    # status call, no delete on the way.
    exec=("<=", 5), exec_again=("<=", 3), walk=10, script=1, copy=(2, 1, 2),
    lookups=10, along=False,   # its file API's stat, one a name
    links=False,    # its file API follows symlinks: the tree shows none
    loop=[fault(kind="status", status=500, prefix="/toolbox", count=1),
          fault(kind="drop", prefix="/toolbox", count=1),
          fault(kind="slow", delay=30, prefix="/toolbox", count=1)],
)

REXEC_EXEC = "POST /api/containers/{id}/exec"

REXEC = dict(
    secret=Emulator.TOKEN,
    silent=[dict(fault=fault(kind="slow", delay=30, prefix="/api/containers",
                             count=100),
                 op="read", on_server=True,
                 errnos=(errno.ETIMEDOUT, errno.EIO), within=120,
                 requests=None, err=None)],
    interrupt=(fault(kind="slow", delay=60, prefix="/api/containers",
                     count=100), 4),
    ctl_hang=fault(kind="slow", delay=60, prefix="/api/containers",
                   method="POST", count=100),
    uploads=dict(faults=[
        [fault(kind="drop", prefix="/api/containers", method="POST",
               count=1)],
        None], rounds=8, size=2000),
    leaks=[(fault(kind="status", status=401, prefix="/api/containers",
                  count=1), "listdir", ""),
           (fault(kind="status", status=401, prefix="/ws/terminal", count=1),
            "exec", "")],
    errors=[
        # The first HTTP call of a read: the lookup's exec call (new
        # server), or the download (old server: scripts go over the open
        # terminal).  A 429 is not retried: EAGAIN, and err says why.
        ([fault(kind="ratelimit", prefix="/api/containers", count=1)],
         "read", "s", errno.EAGAIN, ["rate limit", "60"]),
        ([], "read", "s", 0, []),
        # Server errors of idempotent calls are retried.
        ([fault(kind="status", status=503, prefix="/api/containers",
                method="GET", count=2)], "read", "e", 0, []),
    ],
    warm=True,
    ls=[((REXEC_EXEC,), "<=", 4), ((), "<=", 5)],
    download="GET /api/containers/{id}/files", no_read=(),
    upload="POST /api/containers/{id}/files", no_write=(),
    # Its exec endpoint brings back 1 MiB at most: rounds of ~700 KiB.
    exec=1, walk=10, script=1, rounds=9, copy=(2, 1, 2), lookups=5, along=True,
    loop=[fault(kind="status", status=500, prefix="/api/containers", count=1),
          fault(kind="drop", prefix="/api/containers", count=1),
          fault(kind="slow", delay=30, prefix="/api/containers", count=1)],
)

# The old server: scripts and commands go over the open terminal.
REXEC_OLD = dict(REXEC, ls=[((), "==", 0)], exec=0)

VTRIX = dict(
    secret=Emulator.TOKEN,
    silent=[
        # The socket's answers.
        dict(fault=fault(kind="ws_slow", delay=30, count=100),
             op="listdir", on_server=False, errnos=(errno.ETIMEDOUT,),
             within=30, requests=None, err="no answer"),
        # The REST API's.
        dict(fault=fault(kind="slow", delay=30, prefix="/api/v1/sandbox/",
                         method="GET", count=100),
             op="status", on_server=False, errnos=(errno.ETIMEDOUT,),
             within=120, requests=None, err=None),
    ],
    interrupt=(fault(kind="ws_slow", delay=60, method="exec", count=100), 3),
    ctl_hang=fault(kind="slow", delay=60, prefix="/api/v1/sandbox/",
                   method="POST", count=100),
    uploads=dict(faults=[
        [fault(kind="ws_drop", method="write_binary", count=1)],
        None], rounds=6, size=100000),
    leaks=[(fault(kind="status", status=401, code=40100, prefix="/api",
                  count=1), "status", ""),
           (fault(kind="ws_error", code=-32000, count=1), "listdir", "x")],
    errors=[
        # JSON-RPC -32001 is "file not found".
        ([fault(kind="ws_error", method="read_stream", code=-32001,
                count=1)], "read", "e", errno.ENOENT, []),
        # -32602, invalid params: EINVAL; -32000, a failure: EIO with the
        # text.
        ([fault(kind="ws_error", method="exec", code=-32602, count=1)],
         "mkdir", "m1", errno.EINVAL, []),
        ([fault(kind="ws_error", method="exec", code=-32000, count=1)],
         "mkdir", "m2", errno.EIO, ["-32000"]),
        # Envelope codes: a business error with HTTP 200 is not retried
        # (a 40400 makes the name be looked up again, then asked once
        # more); 50000 with HTTP 500 is retried, then EIO.
        ([fault(kind="error_code", code=40400, prefix="/api/v1/sandbox/",
                method="GET", count=2)], "status", "", errno.ENOENT, []),
        ([fault(kind="status", status=500, code=50000,
                prefix="/api/v1/sandbox/", method="GET", count=10)],
         "status", "", errno.EIO, []),
        # A proxy's answer that is not an envelope: the HTTP status decides.
        ([fault(kind="status", status=403, raw=True,
                prefix="/api/v1/sandbox/", method="GET", count=1)],
         "status", "", errno.EACCES, []),
    ],
    warm=False,
    ls=[(("WS list_files", "WS stat", "WS read"), "==", 0),
        (("WS exec",), "<=", 4)],
    download="WS read_stream", no_read=("WS read",),
    upload="WS write_binary", no_write=("WS write",),
    exec=None, walk=10, script=1, copy=(2, 1, 2), lookups=6, along=True,  # + connect
    loop=[fault(kind="ws_error", code=-32000, count=1),
          fault(kind="ws_drop", method="write_binary", count=1),
          fault(kind="ws_slow", delay=30, count=1)],
)

# A real engine (Podman) behind tests/emulators/engine.py's proxy: its
# faults are the proxy's (status, empty, slow, drop), prefixes are paths
# without the API version.  No credential: the engine is a Unix socket.
# TODO(docker): the errors and the costs are what the provider is meant to
# do (files by the archive API, listings and POSIX calls by exec scripts);
# check them once it runs.
DOCKER_ARCHIVE_GET = "GET /containers/{id}/archive"
DOCKER_EXEC = "POST /containers/{id}/exec"

DOCKER = dict(
    secret=None,
    # Scripts go to shells kept open in the container: their turns on the
    # exec's stream are what a silent engine leaves unanswered.
    silent=[dict(fault=fault(kind="turn_slow", delay=30, prefix="/exec/",
                             count=100),
                 op="stat", on_server=False, errnos=(errno.ETIMEDOUT,),
                 within=120, requests=None, err=None)],
    interrupt=(fault(kind="slow", delay=60, prefix="/containers/",
                     count=100), 4),
    ctl_hang=fault(kind="slow", delay=60, prefix="/containers/",
                   method="POST", count=100),
    uploads=dict(faults=[
        [fault(kind="drop", prefix="/containers/", method="PUT", count=1)],
        [fault(kind="empty", status=500, prefix="/containers/", method="PUT",
               count=1)],
        None], rounds=9, size=2000),
    leaks=[],
    errors=[
        # An unknown container: 404 from the engine.
        ([], "stat_box", "no-such-box", errno.ENOENT, []),
        ([], "read", "s", 0, []),
        # Server errors of idempotent calls are retried.
        ([fault(kind="status", status=503, prefix="/containers/",
                method="GET", count=2)], "read", "e", 0, []),
    ],
    warm=True,
    # Scripts go to a shell kept open in the container (opening one is
    # two requests: the exec and its start), each one turn on its stream:
    # a path not yet known is looked up by one script, the listing is one
    # script more: as Rexec, four scripts.
    ls=[((DOCKER_EXEC,), "<=", 1), (("HEAD /containers/{id}/archive",), "==", 0),
        ((), "<=", 6)],
    # A small file of a running container is a `cat` on a kept shell:
    # a turn, as the scripts are (download_is_script: the counts of a
    # walk's scripts and of its downloads are one route).
    download="TURN POST /exec/{id}/start", download_is_script=True,
    no_read=(DOCKER_ARCHIVE_GET,),
    upload="PUT /containers/{id}/archive", no_write=(),
    # A script is a turn, or two requests more where a shell is opened
    # for scripts side by side; a cold walk: the lookups, the subtree and
    # the statfs.  A command: one turn on a spare shell opened ahead (or
    # on its way), and the next spare's create and start off its path,
    # which fall in the counted window or the next one's: at most four;
    # its end mark tells the status, no inspect.
    exec=("<=", 4), walk=6, script=2, copy=(4, 1, 4), lookups=7, along=True,
    loop=[fault(kind="status", status=500, prefix="/containers/", count=1),
          fault(kind="drop", prefix="/containers/", count=1),
          fault(kind="slow", delay=30, prefix="/containers/", count=1),
          fault(kind="turn_drop", prefix="/exec/", count=1),
          fault(kind="turn_slow", delay=30, prefix="/exec/", count=1)],
)

# The microsandbox emulator (tests/emulators/microsandbox.py): msb on
# PATH and an agent socket per sandbox.  A request is an agent session
# ("fs.Stat", "exec") or an msb run ("cli.ls"); faults are the emulator's
# (drop, slow, silent, error), by the same keys.  No credential: the
# sandboxes are this machine's.
MICROSANDBOX = dict(
    secret=None,
    silent=[dict(fault=fault(kind="silent", prefix="fs.Stat", count=100),
                 op="stat", on_server=False, errnos=(errno.ETIMEDOUT,),
                 within=30, requests=1, err="no answer")],
    interrupt=(fault(kind="silent", prefix="fs.", count=100), 4),
    ctl_hang=fault(kind="silent", prefix="cli.stop", count=100),
    uploads=dict(faults=[
        [fault(kind="drop", prefix="fs.Write", count=1)],
        [fault(kind="error", prefix="fs.OpenFile", errno=errno.EIO, count=1)],
        None], rounds=9, size=100000),
    leaks=[],
    errors=[
        # The agent's errors carry the errno as "(os error N)".
        ([fault(kind="error", prefix="fs.Stat", errno=errno.EACCES, count=1)],
         "stat", "nope", errno.EACCES, []),
        ([fault(kind="error", prefix="fs.OpenFile", errno=errno.EIO,
                count=1)], "read", "s", errno.EIO, ["os error 5"]),
        # msb's own: an unknown sandbox.
        ([], "stat_box", "no-such-box", errno.ENOENT, []),
        # A read whose connection drops is asked again on a new one.
        ([fault(kind="drop", prefix="fs.Read", count=1)], "read", "e", 0,
         []),
    ],
    warm=True,
    ls=[(("exec",), "<=", 1), (("fs.List",), "==", 0), ((), "<=", 4)],
    download="fs.Read", no_read=(),
    upload="fs.Write", no_write=(),
    # A command: one exec session (the sandbox's settings are known).  A
    # file read is three sessions in two round trips (the close of a
    # read handle is not waited for); a new file written, four (open,
    # write, fstat, close); a directory made, two (the agent's Mkdir is
    # mkdir -p: a Stat first tells EEXIST).
    exec=1, walk=10, script=1, copy=(3, 4, 2), read_one=3,
    lookups=10, along=False,   # the agent's Stat, one a name
    loop=[fault(kind="error", prefix="fs.", errno=errno.EIO, count=1),
          fault(kind="drop", prefix="fs.", count=1),
          fault(kind="drop", prefix="exec", count=1),
          fault(kind="silent", prefix="fs.Write", count=1)],
)

# The cloud backend: the lifecycle over REST, the agent over its
# WebSocket (split and coalesced at random by the emulator); the agent's
# faults are the same, but that a lookup is a script (an exec) that lists
# a directory along, as on the other providers across a network.
MICROSANDBOX_CLOUD = dict(
    MICROSANDBOX,
    secret=Emulator.MSB_KEY,
    silent=[dict(fault=fault(kind="silent", prefix="exec", count=100),
                 op="stat", on_server=False, errnos=(errno.ETIMEDOUT,),
                 within=30, requests=1, err="no answer")],
    ls=[(("exec",), "<=", 3), (("fs.List",), "==", 0), ((), "<=", 4)],
    lookups=5, along=True,
    ctl_hang=fault(kind="silent", prefix="cloud.stop", count=100),
    leaks=[(fault(kind="error", prefix="cloud.get", count=1), "status", ""),
           (fault(kind="drop", prefix="cloud.list", count=1), "stat_box", "other")],
    errors=[e for e in MICROSANDBOX["errors"] if e[1] != "stat"] + [
        # The API's error body: 500 {"code", "message"} -> EIO.
        ([fault(kind="error", prefix="cloud.get", count=1)], "status", "", errno.EIO,
         ["injected fault"]),
    ],
    loop=MICROSANDBOX["loop"] + [fault(kind="drop", prefix="cloud.agent", count=1)],
)

EXPECT = {
    "daytona": DAYTONA,
    "docker": DOCKER,
    "microsandbox": MICROSANDBOX,
    "microsandbox@cloud": MICROSANDBOX_CLOUD,
    "rexec": REXEC,
    "rexec@old": REXEC_OLD,
    "vtrix": VTRIX,
}
