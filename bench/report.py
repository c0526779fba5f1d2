#!/usr/bin/python3
"""Summarise bench/run.sh samples: medians per operation and target, ratios,
the issue's goals, as a plain table and as Markdown for docs/performance.md.

usage: report.py [--requests REQUESTS.tsv] RESULTS.tsv META.tsv [OUT.md]

RESULTS.tsv has a header and rows: target op phase run seconds rc.
META.tsv has rows: key value.  REQUESTS.tsv (daytona target) has a header
and rows: op phase run total list info download upload folder execute
session api other other_routes, the Daytona emulator's request counts for
one timed operation.  Only the Python standard library is used.
"""

import csv
import math
import statistics
import sys

TARGETS = ["native", "sbxfs", "sshfs", "daytona"]
# Shown only when it has samples (runs without it keep the older table).
OPTIONAL = {"daytona"}
OPS = [
    ("find", "find"),
    ("lsR", "ls -lR"),
    ("grep", "grep -r"),
    ("cat", "cat big file"),
    ("cp", "cp -r include in"),
    ("exec", "exec round trip"),
]
PHASES = ["cold", "warm"]
# Columns of REQUESTS.tsv, as shown: (column, heading).
REQ_COLS = [
    ("total", "total"),
    ("list", "list"),
    ("info", "info"),
    ("download", "download"),
    ("upload", "upload"),
    ("folder", "mkdir"),
    ("execute", "execute"),
    ("session", "session"),
    ("api", "api"),
    ("other", "other"),
]


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
    """(op, phase) -> list of rows (dicts of ints, plus other_routes)."""
    reqs = {}
    if not path:
        return reqs
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            r = {c: int(row[c]) for c, _ in REQ_COLS}
            r["other_routes"] = row.get("other_routes", "-")
            reqs.setdefault((row["op"], row["phase"]), []).append(r)
    return reqs


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
                "dt_nat": ratio(med.get("daytona"), med["native"]),
                "ssh_dt": ratio(med["sshfs"], med.get("daytona")),
            })
    return rows, notes


def goals(rows):
    by = {(r["op"], r["phase"]): r for r in rows}
    out = []

    def check(text, op, phase, key, ok):
        r = by.get((op, phase))
        v = r and r[key]
        if v is None:
            out.append(f"- {text}: not measured")
        else:
            out.append(f"- {text}: {sig(v, 2)}x, {'met' if ok(v) else 'NOT met'}")

    for op, name in [("find", "find"), ("lsR", "ls -lR")]:
        check(f"cold metadata ({name}) at least 5x faster than sshfs (sshfs/sbxfs >= 5)",
              op, "cold", "ssh_sbx", lambda v: v >= 5)
    for op, name in [("find", "find"), ("lsR", "ls -lR"), ("grep", "grep -r"),
                     ("cat", "cat"), ("cp", "cp -r")]:
        check(f"warm {name} within 2x of native (sbxfs/native <= 2)",
              op, "warm", "sbx_nat", lambda v: v <= 2)
    for phase in PHASES:
        check(f"big file read ({phase}) at least 3x faster than sshfs (sshfs/sbxfs >= 3)",
              "cat", phase, "ssh_sbx", lambda v: v >= 3)
    return out


def table(rows, targets):
    """(head, body) of the time table."""
    head = ["operation", *targets, "sbxfs/native", "sshfs/sbxfs"]
    keys = ["sbx_nat", "ssh_sbx"]
    if "daytona" in targets:
        head += ["daytona/native", "sshfs/daytona"]
        keys += ["dt_nat", "ssh_dt"]
    body = [[r["label"], *r["cells"], *(rcell(r[k]) for k in keys)] for r in rows]
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


def request_rows(reqs, big_label):
    """(head, body, notes) of the Daytona requests table: medians per
    operation and phase; notes (lines of text) for totals that varied and
    for requests outside the named columns."""
    head = ["operation", "n"] + [h for _, h in REQ_COLS]
    body, spread, others = [], [], []
    for op, label in OPS:
        if op == "cat":
            label = big_label
        for phase in PHASES:
            got = reqs.get((op, phase))
            if not got:
                continue
            name = f"{label} ({phase})"
            body.append([name, str(len(got))]
                        + [num(statistics.median(r[c] for r in got)) for c, _ in REQ_COLS])
            totals = [r["total"] for r in got]
            if min(totals) != max(totals):
                spread.append(f"{name}: {min(totals)} to {max(totals)} "
                              f"over {len(got)} samples")
            other = sorted({x for r in got for x in r["other_routes"].split(",")
                            if x and x != "-"})
            if other:
                others.append(f"{name}: {', '.join(other)}")
    notes = []
    if spread:
        notes += ["Totals that differed between samples:", ""] + [f"- {x}" for x in spread]
    if others:
        notes += [""] if notes else []
        notes += ["Requests counted as other:", ""] + [f"- {x}" for x in others]
    return head, body, notes


def markdown(rows, targets, notes, goal_lines, meta, req):
    m = meta.get
    daytona = "daytona" in targets
    out = []
    out.append(f"### Results, {m('date', '?')}")
    out.append("")
    out.append(f"Machine: {m('nproc', '?')} CPUs ({m('cpu', '?')}), {m('mem_gib', '?')} GiB RAM, "
               f"kernel {m('kernel', '?')}, {m('os', '?')}; corpus on {m('fs', '?')}.")
    vers = [m("fuse")]
    if "sshfs" in meta:
        vers.append(m("sshfs"))
    if "sbxfs" in meta:
        vers.append(f"{m('sbxfs')}, built from git {m('git', '?')}")
    if daytona and "daytona_emulator" in meta:
        vers.append(m("daytona_emulator"))
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
    out.append("")
    out.append("- cold: before each run a fresh mount ("
               + ("sbxfs, sshfs and daytona are unmounted and mounted again; "
                  "the Daytona emulator keeps running"
                  if daytona else "sbxfs and sshfs are unmounted and mounted again")
               + ") and "
               + ("the kernel's page, dentry and inode caches dropped "
                  "(`sync; echo 3 > /proc/sys/vm/drop_caches`), for all targets;"
                  if m("drop_caches") == "1" else
                  "**no cache drop** (drop_caches is not writable here), so native "
                  "cold is really warm;"))
    out.append("- warm: the same operation again at once on the same mount;")
    out.append("- `grep -r` looks for a pattern that never matches, so every file is read;")
    out.append("- `cp -r` copies the native include/ tree into the target (for sbxfs"
               + (" and daytona" if daytona else "")
               + " into the sandbox's /tmp through root/), each run into a new directory;")
    out.append("- exec: `echo true > exec; cat exec` on a running sandbox;")
    out.append("- sshfs: to 127.0.0.1 over loopback, default caching, `"
               + m("sshfs_opts", "?") + "`" + (";" if daytona else "."))
    if daytona:
        out.append("- daytona: sbxfs `-o provider=daytona` against the Daytona emulator "
                   "(`tests/emulators/daytona.py`) on 127.0.0.1, one running sandbox. The "
                   "corpus is copied into the sandbox on the emulator's side (as sshfs's "
                   "lives on its server) and `cp -r` copies are removed there, outside the "
                   "timing. The file API follows symlinks (inside the sandbox) and hides "
                   f"dangling ones, so the tree shows {m('daytona_entries', '?')} entries "
                   f"there, not {m('corpus_entries', '?')}; "
                   "it cannot make symlinks, so each `cp -r` gets EPERM for the corpus's "
                   f"{m('corpus_symlinks', '?')} symlinks "
                   f"({m('daytona_cp_symlink_errors', '?')} such errors in "
                   f"{m('daytona_cp_copies', '?')} copies), expected and not counted as "
                   "failures (any other error is).")
    out.append("")
    out.extend(md_table(*table(rows, targets)))
    out.append("")
    if req is not None:
        head, body, rnotes = req
        out.append("Daytona requests per operation (medians over the samples, n; "
                   "counted by the emulator around each timed operation): `list` "
                   "`GET /files`, `info` `GET /files/info`, `download` "
                   "`GET /files/download`, `upload` `POST /files/upload`, `mkdir` "
                   "`POST /files/folder`, `execute` `POST /process/execute`, `session` "
                   "`/process/session/...` (exec), `api` the main API (`/api/...`).")
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
    goal_lines = goals(rows)
    req = request_rows(reqs, big_label) if reqs else None
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
    if req is not None:
        head, body, rnotes = req
        print("Daytona requests per operation (medians; n = samples)")
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
