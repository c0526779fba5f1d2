#!/usr/bin/env python3
"""Turn one of sbxfs's manual pages, written in Markdown (docs/NAME.S.md),
into roff for man(1).

The pages use a small part of Markdown, and only that part is read:
"# title(S)" once, "## SECTION" headings (NAME's text after its first
": " becomes the whatis line), paragraphs, definition lists
(a term line, then lines that start with ":   " and continue indented by
four spaces), "- " lists, fenced code blocks, tables (kept as they are,
in a literal block, with their fonts), and `code` and **bold** inline.  Anything else is
text.  Usage: md2man.py IN.md OUT.S VERSION
"""

import re
import sys


def inline(text):
    """Roff-escaped text with `code` and **bold** turned to fonts."""
    text = text.replace("\\", "\\e")
    text = re.sub(r"\*\*(.+?)\*\*", r"\\fB\1\\fR", text)
    text = re.sub(r"`([^`]+)`", r"\\fB\1\\fR", text)
    return text


def line_safe(text):
    """A text line that roff takes as text, not as a request."""
    if text.startswith((".", "'")):
        return "\\&" + text
    return text


def literal(lines, out, fonts=False):
    out.append(".PP")
    out.append(".nf")
    out.append(".RS 4")
    for ln in lines:
        out.append(line_safe(inline(ln) if fonts else ln.replace("\\", "\\e")))
    out.append(".RE")
    out.append(".fi")


def convert(src, version):
    lines = src.split("\n")
    out = []
    m = re.match(r"# ([A-Za-z0-9_.-]+)\((\d)\)", lines[0])
    if not m:
        raise SystemExit("md2man: the first line must be '# name(section)...'")
    name, section = m.group(1), m.group(2)
    out.append('.TH "%s" "%s" "" "sbxfs %s" "sbxfs manual"' % (name.upper(), section, version))
    i = 1
    para = []

    def text(words):
        # One line for a paragraph, so that `code` may span its lines.
        return line_safe(inline(" ".join(w.strip() for w in words)))

    def flush():
        if para:
            out.append(".PP")
            out.append(text(para))
            para.clear()

    while i < len(lines):
        ln = lines[i]
        if ln.startswith("```"):
            flush()
            block = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                block.append(lines[i])
                i += 1
            literal(block, out)
        elif ln.startswith("## "):
            flush()
            out.append('.SH "%s"' % ln[3:].strip().upper())
            if ln[3:].strip() == "NAME":
                # whatis(1) reads "name \- what it is".
                i += 1
                words = []
                while i < len(lines) and not lines[i].strip():
                    i += 1
                while i < len(lines) and lines[i].strip():
                    words.append(lines[i].strip())
                    i += 1
                what = " ".join(words).split(": ", 1)[-1]
                out.append("%s \\- %s" % (name, inline(what)))
                continue
        elif ln.startswith("### "):
            flush()
            out.append('.SS "%s"' % inline(ln[4:].strip()))
        elif ln.startswith("|"):
            flush()
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                if not re.match(r"^\|[-:| ]+\|$", lines[i]):
                    block.append(lines[i])
                i += 1
            literal(block, out, fonts=True)
            continue
        elif ln.startswith("- "):
            flush()
            item = [ln[2:]]
            i += 1
            while i < len(lines) and lines[i].startswith("  ") and lines[i].strip():
                item.append(lines[i].strip())
                i += 1
            out.append('.IP "\\(bu" 2')
            out.append(text(item))
            continue
        elif i + 1 < len(lines) and lines[i + 1].startswith(":   ") and ln.strip():
            flush()
            out.append(".TP")
            out.append(line_safe(inline(ln.strip())))
            i += 1
            body = []
            while i < len(lines) and (lines[i].startswith(":   ") or
                                      lines[i].startswith("    ") or
                                      (not lines[i].strip() and i + 1 < len(lines)
                                       and lines[i + 1].startswith("    "))):
                if lines[i].strip():
                    body.append(lines[i][4:])
                else:
                    out.append(text(body))
                    out.append(".IP")
                    body = []
                i += 1
            if body:
                out.append(text(body))
            continue
        elif not ln.strip():
            flush()
        else:
            para.append(ln.strip())
        i += 1
    flush()
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 4:
        raise SystemExit("usage: md2man.py IN.md OUT VERSION")
    with open(sys.argv[1], encoding="utf-8") as f:
        text = convert(f.read(), sys.argv[3])
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
