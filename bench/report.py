#!/usr/bin/python3
"""Summarise bench/run.sh samples: medians per operation and target, ratios,
the issue's goals, as a plain table and as Markdown for docs/performance.md.

usage: report.py [--requests REQUESTS.tsv] RESULTS.tsv META.tsv [OUT.md]

RESULTS.tsv has a header and rows: target op phase run seconds rc.
META.tsv has rows: key value.  REQUESTS.tsv (remote targets) has a header
and rows: target op phase run route count, an emulator's count of requests
(or WebSocket calls) of one route during one timed operation; the route
"total" counts them all.  Only the Python standard library is used.
"""

import csv
import math
import statistics
import sys

REMOTES = ["daytona", "rexec", "vtrix", "docker", "microsandbox", "microsandbox-cloud"]
# fuseref: libfuse's example passthrough_ll, the floor any FUSE filesystem
# pays on the machine.
# docker-cp: Podman's own client on the docker target's container, the
# way `docker cp` and `docker exec` move files and run commands.
TARGETS = ["native", "sbxfs", "fuseref", "sshfs"] + REMOTES + ["docker-cp"]
# Shown only when they have samples.
OPTIONAL = set(REMOTES) | {"fuseref", "docker-cp"}
# Targets whose requests an emulator counts.
COUNTED = REMOTES + ["docker-cp"]
# How the goals name the reference.
FUSEREF_NAME = "libfuse passthrough_ll"
OPS = [
    ("find", "find"),
    ("lsR", "ls -lR"),
    ("du", "du -s"),
    ("grep", "grep -r"),
    ("cat", "cat big file"),
    ("get", "cp -r include out"),
    ("cp", "cp -r include in"),
    ("exec", "exec round trip"),
]
PHASES = ["cold", "warm"]
# Request columns per remote target: (heading, test of an emulator route
# key "METHOD /pattern" or "WS method").  A route no test claims goes to
# "other"; a target without a list here gets one column per route seen.
REQ_GROUPS = {
    "daytona": [
        ("list", lambda k: k in ("GET /files", "GET /files/")),
        ("info", lambda k: k == "GET /files/info"),
        ("download", lambda k: k == "GET /files/download"),
        ("upload", lambda k: k in ("POST /files/upload", "POST /files/bulk-upload")),
        ("mkdir", lambda k: k == "POST /files/folder"),
        ("execute", lambda k: k == "POST /process/execute"),
        ("session", lambda k: k.split(" ", 1)[-1].startswith("/process/session")),
        ("api", lambda k: k.split(" ", 1)[-1].startswith("/api/")),
    ],
}
REQ_LEGEND = {
    "daytona": "`list` `GET /files`, `info` `GET /files/info`, `download` "
               "`GET /files/download`, `upload` `POST /files/bulk-upload` or `/files/upload`, `mkdir` "
               "`POST /files/folder`, `execute` `POST /process/execute`, `session` "
               "`/process/session/...` (exec), `api` the main API (`/api/...`)",
}
# Most columns a table gets before the rest goes to "other".
REQ_MAX_COLS = 9


def load(results_path, meta_path):
    samples = {}  # (op, phase, target) -> list of (seconds, rc)
    with open(results_path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            key = (row["op"], row["phase"], row["target"])
            samples.setdefault(key, []).append((float(row["seconds"]), int(row["rc"])))
    meta = {}
    with open(meta_path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "\t" in line:
                k, v = line.split("\t", 1)
                meta[k] = v
    return samples, meta


def load_requests(path):
    """target -> (op, phase) -> list of samples, each {route: count}."""
    reqs = {}
    if not path:
        return reqs
    counts = None
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            # Each sample's rows start with its "total" (a run has several
            # samples of a warm exec).
            if row["route"] == "total":
                counts = {}
                reqs.setdefault(row["target"], {}).setdefault(
                    (row["op"], row["phase"]), []).append(counts)
            if counts is not None:
                counts[row["route"]] = int(row["count"])
    return reqs


def short_route(key):
    """A column heading for a route key: its method and the part after the
    sandbox id ("GET /api/containers/{id}/files/list" -> "GET files/list")."""
    method, _, route = key.partition(" ")
    if "{id}/" in route:
        route = route.split("{id}/", 1)[1]
    return f"{method} {route}".strip()


def req_columns(target, rows):
    """[(heading, test)] for the target's table."""
    if target in REQ_GROUPS:
        return REQ_GROUPS[target]
    seen = {}
    for got in rows.values():
        for counts in got:
            for k, n in counts.items():
                if k != "total":
                    seen[k] = seen.get(k, 0) + n
    keys = sorted(seen, key=lambda k: (-seen[k], k))[:REQ_MAX_COLS]
    return [(short_route(k), (lambda k0: lambda k: k == k0)(k)) for k in sorted(keys)]


def shown_targets(samples):
    have = {t for (_, _, t) in samples}
    return [t for t in TARGETS if t not in OPTIONAL or t in have]


def median(samples, op, phase, target):
    """(median of the successful samples or None, number failed, number)"""
    got = samples.get((op, phase, target), [])
    ok = [s for s, rc in got if rc == 0]
    return (statistics.median(ok) if ok else None), len(got) - len(ok), len(got)


def sig(x, digits=3):
    """x with about `digits` significant digits, in fixed notation."""
    if x == 0:
        return "0"
    places = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{places}f}"


def cell(value, failed, total):
    if total == 0:
        return "-"
    if value is None:
        return "FAIL"
    return sig(value) + ("*" if failed else "")


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def rcell(r):
    return "-" if r is None else sig(r, 2) + "x"


def build_rows(samples, big_label):
    targets = shown_targets(samples)
    rows = []
    notes = []
    for op, label in OPS:
        if op == "cat":
            label = big_label
        for phase in PHASES:
            med = {}
            cells = []
            present = False
            for t in targets:
                v, failed, total = median(samples, op, phase, t)
                med[t] = v
                present |= total > 0
                cells.append(cell(v, failed, total))
                if failed:
                    notes.append(f"{label} ({phase}) on {t}: {failed} of {total} samples failed")
            if not present:
                continue
            rows.append({
                "op": op, "phase": phase,
                "label": f"{label} ({phase})",
                "cells": cells,
                "sbx_nat": ratio(med["sbxfs"], med["native"]),
                "ssh_sbx": ratio(med["sshfs"], med["sbxfs"]),
                "sbx_fr": ratio(med["sbxfs"], med.get("fuseref")),
                "fr_nat": ratio(med.get("fuseref"), med["native"]),
                "ssh_fr": ratio(med["sshfs"], med.get("fuseref")),
                "remote": {t: (ratio(med.get(t), med["native"]),
                               ratio(med["sshfs"], med.get(t))) for t in REMOTES},
                "cp_docker": ratio(med.get("docker-cp"), med.get("docker")),
            })
    return rows, notes


def goals(rows, with_ref=False):
    """Goal lines; with_ref: the metadata and warm lines end with the
    reference's own figure, the floor beside the goal."""
    by = {(r["op"], r["phase"]): r for r in rows}
    out = []

    def check(text, op, phase, key, ok, ref=None):
        r = by.get((op, phase))
        v = r and r[key]
        if v is None:
            line = f"- {text}: not measured"
        else:
            line = f"- {text}: {sig(v, 2)}x, {'met' if ok(v) else 'NOT met'}"
        if with_ref and ref:
            rv = r and r[ref[0]]
            line += f" ({FUSEREF_NAME}: " + ("not measured" if rv is None else
                                             ref[1](sig(rv, 2))) + ")"
        out.append(line)

    for op, name in [("find", "find"), ("lsR", "ls -lR"), ("du", "du -s")]:
        check(f"cold metadata ({name}) at least 5x faster than sshfs (sshfs/sbxfs >= 5)",
              op, "cold", "ssh_sbx", lambda v: v >= 5,
              ("ssh_fr", lambda x: f"sshfs/fuseref {x}x"))
    for op, name in [("find", "find"), ("lsR", "ls -lR"), ("du", "du -s"), ("grep", "grep -r"),
                     ("cat", "cat"), ("cp", "cp -r")]:
        check(f"warm {name} within 2x of native (sbxfs/native <= 2)",
              op, "warm", "sbx_nat", lambda v: v <= 2,
              ("fr_nat", lambda x: f"{x}x native"))
    for phase in PHASES:
        check(f"big file read ({phase}) at least 3x faster than sshfs (sshfs/sbxfs >= 3)",
              "cat", phase, "ssh_sbx", lambda v: v >= 3)
    return out


def table(rows, targets):
    """(head, body) of the time table."""
    ref = "fuseref" in targets
    head = ["operation", *targets, "sbxfs/native", *(["sbxfs/fuseref"] if ref else []),
            "sshfs/sbxfs"]
    remotes = [t for t in REMOTES if t in targets]
    for t in remotes:
        head += [f"{t}/native", f"sshfs/{t}"]
    cp = "docker-cp" in targets and "docker" in targets
    if cp:
        head.append("docker-cp/docker")
    body = [[r["label"], *r["cells"], rcell(r["sbx_nat"]),
             *([rcell(r["sbx_fr"])] if ref else []), rcell(r["ssh_sbx"]),
             *(rcell(x) for t in remotes for x in r["remote"][t]),
             *([rcell(r["cp_docker"])] if cp else [])] for r in rows]
    return head, body


def plain(head, body):
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    lines = []
    for i, x in enumerate([head] + body):
        lines.append("  ".join(c.ljust(widths[0]) if j == 0 else c.rjust(widths[j])
                               for j, c in enumerate(x)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def md_table(head, body):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    out.extend("| " + " | ".join(x) + " |" for x in body)
    return out


def num(x):
    """A count or a median of counts: an integer, or one decimal."""
    return str(int(x)) if x == int(x) else f"{x:.1f}"


def request_rows(target, rows, big_label):
    """(head, body, notes) of a remote target's requests table: medians per
    operation and phase; notes (lines of text) for totals that varied and
    for requests outside the named columns."""
    cols = req_columns(target, rows)
    head = ["operation", "n", "total"] + [h for h, _ in cols] + ["other"]
    body, spread, others = [], [], []
    for op, label in OPS:
        if op == "cat":
            label = big_label
        for phase in PHASES:
            got = rows.get((op, phase))
            if not got:
                continue
            name = f"{label} ({phase})"
            per_col = [[] for _ in cols]
            other_n, other_keys = [], set()
            for counts in got:
                sums = [0] * len(cols)
                rest = 0
                for k, n in counts.items():
                    if k == "total":
                        continue
                    for i, (_, test) in enumerate(cols):
                        if test(k):
                            sums[i] += n
                            break
                    else:
                        rest += n
                        other_keys.add(k)
                for i, v in enumerate(sums):
                    per_col[i].append(v)
                other_n.append(rest)
            totals = [c.get("total", 0) for c in got]
            body.append([name, str(len(got)), num(statistics.median(totals))]
                        + [num(statistics.median(v)) for v in per_col]
                        + [num(statistics.median(other_n))])
            if min(totals) != max(totals):
                spread.append(f"{name}: {min(totals)} to {max(totals)} "
                              f"over {len(got)} samples")
            if other_keys:
                others.append(f"{name}: {', '.join(sorted(other_keys))}")
    notes = []
    if spread:
        notes += ["Totals that differed between samples:", ""] + [f"- {x}" for x in spread]
    if others:
        notes += [""] if notes else []
        notes += ["Requests counted as other:", ""] + [f"- {x}" for x in others]
    return head, body, notes


def remote_note(t, m):
    """The bullet that says how remote target t was measured."""
    where = (f"the {t} emulator (`tests/emulators/{t}.py`) on 127.0.0.1"
             if t not in ("docker", "microsandbox", "microsandbox-cloud") else
             "the microsandbox emulator's stand-in for the cloud "
             "(`tests/emulators/microsandbox_cloud.py`): its REST API and the agent "
             "WebSocket on 127.0.0.1, as a network service"
             if t == "microsandbox-cloud" else
             "Podman 4.3 with runc and vfs storage, through a counting proxy "
             "(`tests/emulators/engine.py`) on a Unix socket, a busybox image"
             if t == "docker" else
             "its emulator (`tests/emulators/microsandbox.py`): a fake `msb` and "
             "each sandbox's agent on a Unix socket of this machine, with "
             "no network between (the local backend)")
    opt = "provider=microsandbox -o backend=cloud" if t == "microsandbox-cloud" \
        else f"provider={t}"
    text = (f"- {t}: sbxfs `-o {opt}` against {where}, one running sandbox. The corpus "
            "is copied into the sandbox on the emulator's side (as sshfs's lives on its "
            "server) and `cp -r` copies are removed there, outside the timing. "
            f"The corpus tree shows {m(t + '_entries', '?')} entries through it "
            f"({m('corpus_entries', '?')} on the host)")
    if t == "daytona":
        text += (": the file API follows symlinks (inside the sandbox) and hides "
                 "dangling ones")
    if m(t + "_cp_copies", "0") != "0":
        text += (f"; it cannot make symlinks, so each `cp -r` gets EPERM for the corpus's "
                 f"{m('corpus_symlinks', '?')} symlinks "
                 f"({m(t + '_cp_symlink_errors', '?')} such errors in "
                 f"{m(t + '_cp_copies', '?')} copies), expected and not counted as "
                 "failures (any other error is)")
    return text + "."


def req_heading(t):
    legend = REQ_LEGEND.get(t)
    text = (f"{t} requests per operation (medians over the samples, n; counted by "
            "the emulator around each timed operation)")
    return text + (": " + legend + "." if legend else
                   "; columns are the emulator's routes after the sandbox id, "
                   "`WS m` a JSON-RPC call of method m.")


def markdown(rows, targets, notes, goal_lines, meta, reqs):
    m = meta.get
    remotes = [t for t in REMOTES if t in targets]
    out = []
    out.append(f"### Results, {m('date', '?')}")
    out.append("")
    out.append(f"Machine: {m('nproc', '?')} CPUs ({m('cpu', '?')}), {m('mem_gib', '?')} GiB RAM, "
               f"kernel {m('kernel', '?')}, {m('os', '?')}; corpus on {m('fs', '?')}.")
    vers = [m("fuse")]
    if "sshfs" in meta:
        vers.append(m("sshfs"))
    if "fuseref" in meta:
        vers.append(m("fuseref"))
    if "sbxfs" in meta:
        vers.append(f"{m('sbxfs')}, built from git {m('git', '?')}")
    for t in remotes:
        if t + "_emulator" in meta:
            vers.append(m(t + "_emulator"))
    if remotes and "python" in meta:
        vers.append(m("python"))
    out.append("Versions: " + "; ".join(v for v in vers if v) + ".")
    if "load" in meta:
        out.append(f"Load average: {m('load')}.")
    out.append("")
    out.append("Command (as root, from the repository):")
    out.append("")
    out.append("```")
    out.append(m("command", "bench/run.sh"))
    out.append("```")
    out.append("")
    runs = m("runs", "?")
    out.append(f"Corpus: {m('corpus', '?')}. Seconds, median of {runs} run(s); "
               f"warm exec: median of {runs} x {m('exec_runs', '?')} round trips.")
    lat = int(m("latency_ms", "0") or 0)
    if lat:
        out.append("")
        out.append(f"**At a distance**: sshfs and every remote target reach their server "
                   f"through `bench/relay.py`, which delays every byte {lat} ms each way "
                   f"(a round trip of {2 * lat} ms) and a new connection by one round "
                   "trip; native and local targets do not.")
    out.append("")
    fuse = [t for t in targets if t != "native"]
    out.append("- cold: before each run a fresh mount ("
               + ", ".join(fuse) + " are unmounted and mounted again"
               + ("; the emulators keep running" if remotes else "")
               + ") and "
               + ("the kernel's page, dentry and inode caches dropped "
                  "(`sync; echo 3 > /proc/sys/vm/drop_caches`), for all targets;"
                  if m("drop_caches") == "1" else
                  "**no cache drop** (drop_caches is not writable here), so native "
                  "cold is really warm;"))
    out.append("- warm: the same operation again at once on the same mount;")
    out.append("- `grep -r` looks for a pattern that never matches, so every file is read;")
    out.append("- `cp -r include out` copies the target's tree to this machine's disk, "
               "each run into a new directory;")
    out.append("- `cp -r include in` copies the native include/ tree into the target (for sbxfs"
               + "".join(f", {t}" for t in remotes)
               + " into the sandbox's /tmp through root/), each run into a new directory;")
    out.append("- exec: `echo true > exec; cat exec` on a running sandbox;")
    ref = "fuseref" in targets
    out.append("- sshfs: to 127.0.0.1 over loopback, default caching, `"
               + m("sshfs_opts", "?") + "`" + (";" if remotes or ref else "."))
    if ref:
        out.append("- fuseref: what a minimal FUSE filesystem costs here: libfuse's example "
                   "low-level passthrough filesystem, `passthrough_ll.c` from Debian's "
                   "libfuse3-dev examples built at run time with `cc -O2`, mounted with `"
                   + m("fuseref_opts", "?") + "` (the kernel keeps attributes, entries and "
                   "pages, its most favourable setting; open-file limit "
                   + m("fuseref_nofile", "?") + ") over the same directory sshfs exports"
                   + (";" if remotes else "."))
    for t in remotes:
        out.append(remote_note(t, m))
    if "docker-cp" in targets:
        out.append("- docker-cp: " + m("docker_cp", "Podman's client") + " on the docker "
                   "target's container and engine, through the same relay: `cp bench:/DIR "
                   "DEST` (out), `cp DIR bench:/tmp/NAME` (in), `cp bench:/BIG -` (a tar on "
                   "stdout, for the big file) and `exec bench true`, as `docker cp` and "
                   "`docker exec` do them; it has no tree to walk. docker-cp/docker: its "
                   "time over sbxfs's.")
    out.append("")
    out.extend(md_table(*table(rows, targets)))
    out.append("")
    for t, (head, body, rnotes) in reqs:
        out.append(req_heading(t))
        out.append("")
        out.extend(md_table(head, body))
        if rnotes:
            out.append("")
            out.extend(rnotes)
        out.append("")
    out.append("Goals (issue 2):")
    out.append("")
    out.extend(goal_lines)
    if notes:
        out.append("")
        out.append("`*` marks medians over the successful samples only:")
        out.append("")
        out.extend(f"- {n}" for n in notes)
    return "\n".join(out) + "\n"


def main():
    args = sys.argv[1:]
    requests_path = None
    if args[:1] == ["--requests"] and len(args) >= 2:
        requests_path = args[1]
        args = args[2:]
    if len(args) not in (2, 3):
        sys.exit(__doc__)
    samples, meta = load(args[0], args[1])
    reqs = load_requests(requests_path)
    targets = shown_targets(samples)
    big = meta.get("corpus", "").rsplit("big file ", 1)[-1]
    big_label = f"cat {big} file" if big else "cat big file"
    rows, notes = build_rows(samples, big_label)
    goal_lines = goals(rows, "fuseref" in targets)
    req = [(t, request_rows(t, reqs[t], big_label)) for t in COUNTED if t in reqs]
    md = markdown(rows, targets, notes, goal_lines, meta, req)

    print()
    print(f"sbxfs benchmark  {meta.get('date', '')}  nproc {meta.get('nproc', '?')}  "
          f"kernel {meta.get('kernel', '?')}")
    print(f"command: {meta.get('command', '')}")
    print(f"corpus: {meta.get('corpus', '')}; medians of {meta.get('runs', '?')} runs, seconds")
    if "load" in meta:
        print(f"load average: {meta['load']}")
    print()
    print(plain(*table(rows, targets)))
    print()
    for t, (head, body, rnotes) in req:
        print(f"{t} requests per operation (medians; n = samples)")
        print()
        print(plain(head, body))
        if rnotes:
            print()
            print("\n".join(rnotes))
        print()
    print("\n".join(goal_lines))
    for n in notes:
        print("note:", n)
    print()
    print("----- markdown for docs/performance.md -----")
    print()
    print(md, end="")
    if len(args) == 3:
        with open(args[2], "w") as f:
            f.write(md)


if __name__ == "__main__":
    main()
