#!/usr/bin/python3
"""Summarise bench/run.sh samples: medians per operation and target, ratios,
the issue's goals, as a plain table and as Markdown for docs/performance.md.

usage: report.py RESULTS.tsv META.tsv [OUT.md]

RESULTS.tsv has a header and rows: target op phase run seconds rc.
META.tsv has rows: key value.  Only the Python standard library is used.
"""

import csv
import math
import statistics
import sys

TARGETS = ["native", "sbxfs", "sshfs"]
OPS = [
    ("find", "find"),
    ("lsR", "ls -lR"),
    ("grep", "grep -r"),
    ("cat", "cat big file"),
    ("cp", "cp -r include in"),
    ("exec", "exec round trip"),
]
PHASES = ["cold", "warm"]


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
    rows = []
    notes = []
    for op, label in OPS:
        if op == "cat":
            label = big_label
        for phase in PHASES:
            med = {}
            cells = []
            present = False
            for t in TARGETS:
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


def text_table(rows):
    head = ["operation", "native", "sbxfs", "sshfs", "sbxfs/native", "sshfs/sbxfs"]
    body = [[r["label"], *r["cells"], rcell(r["sbx_nat"]), rcell(r["ssh_sbx"])] for r in rows]
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    lines = []
    for i, x in enumerate([head] + body):
        lines.append("  ".join(c.ljust(widths[0]) if j == 0 else c.rjust(widths[j])
                               for j, c in enumerate(x)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(rows, notes, goal_lines, meta):
    m = meta.get
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
    out.append("Versions: " + "; ".join(v for v in vers if v) + ".")
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
    out.append("- cold: before each run a fresh mount (sbxfs and sshfs are unmounted and "
               "mounted again) and "
               + ("the kernel's page, dentry and inode caches dropped "
                  "(`sync; echo 3 > /proc/sys/vm/drop_caches`), for all three targets;"
                  if m("drop_caches") == "1" else
                  "**no cache drop** (drop_caches is not writable here), so native "
                  "cold is really warm;"))
    out.append("- warm: the same operation again at once on the same mount;")
    out.append("- `grep -r` looks for a pattern that never matches, so every file is read;")
    out.append("- `cp -r` copies the native include/ tree into the target (for sbxfs into "
               "the sandbox's /tmp through root/), each run into a new directory;")
    out.append("- exec: `echo true > exec; cat exec` on a running sandbox;")
    out.append("- sshfs: to 127.0.0.1 over loopback, default caching, `"
               + m("sshfs_opts", "?") + "`.")
    out.append("")
    out.append("| operation | native | sbxfs | sshfs | sbxfs/native | sshfs/sbxfs |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        out.append("| " + " | ".join([r["label"], *r["cells"], rcell(r["sbx_nat"]),
                                       rcell(r["ssh_sbx"])]) + " |")
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
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    samples, meta = load(sys.argv[1], sys.argv[2])
    big = meta.get("corpus", "").rsplit("big file ", 1)[-1]
    rows, notes = build_rows(samples, f"cat {big} file" if big else "cat big file")
    goal_lines = goals(rows)
    md = markdown(rows, notes, goal_lines, meta)

    print()
    print(f"sbxfs benchmark  {meta.get('date', '')}  nproc {meta.get('nproc', '?')}  "
          f"kernel {meta.get('kernel', '?')}")
    print(f"command: {meta.get('command', '')}")
    print(f"corpus: {meta.get('corpus', '')}; medians of {meta.get('runs', '?')} runs, seconds")
    print()
    print(text_table(rows))
    print()
    print("\n".join(goal_lines))
    for n in notes:
        print("note:", n)
    print()
    print("----- markdown for docs/performance.md -----")
    print()
    print(md, end="")
    if len(sys.argv) == 4:
        with open(sys.argv[3], "w") as f:
            f.write(md)


if __name__ == "__main__":
    main()
