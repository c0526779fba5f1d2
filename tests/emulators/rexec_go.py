"""Go compatibility for the Rexec emulator (rexec.py): what the server's Go
code, gin and the Docker client do to the bytes on the wire.

encoding/json output (GoMap, go_json; Go's number and time formats), Go's
path and strconv helpers, json.Unmarshal with Go's error texts (the create,
exec and terminal message schemas), the server's output sanitising,
Docker's multiplexed streams, the files/list parser of `ls -la` output, and
gin's JSON responses.  See rexec.py's docstring for the whole emulator.
"""

import json
import re
import struct
import time
from decimal import Decimal

from aiohttp import web

from common import go_frac


# ====================================================== Go compatibility

class GoMap(dict):
    """A Go map (gin.H): encoding/json writes its keys sorted."""


# Characters encoding/json escapes (HTMLEscape on): controls, quote,
# backslash, <, >, &, U+2028/2029, and lone surrogates, which stand for
# invalid UTF-8 bytes (decoded with surrogateescape) and become \ufffd.
_GO_ESCAPE_RE = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')
_GO_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
             "\b": "\\b", "\f": "\\f"}


def _go_escape_char(m):
    ch = m.group(0)
    short = _GO_SHORT.get(ch)
    if short:
        return short
    if "\ud800" <= ch <= "\udfff":
        return "\\ufffd"
    return "\\u%04x" % ord(ch)


def go_string(s):
    return '"' + _GO_ESCAPE_RE.sub(_go_escape_char, s) + '"'


def go_float(f):
    """A float64 as encoding/json writes it: strconv's shortest form, 'f'
    format between 1e-6 and 1e21, else 'e' with "e-09" shortened to "e-9"."""
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError("unsupported float")
    r = repr(f)
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        return re.sub(r"e-0(\d)$", r"e-\1", r)
    if "e" in r:
        r = format(Decimal(r), "f")
    if r.endswith(".0"):
        r = r[:-2]
    return r


def go_json(v):
    """encoding/json.Marshal of a value built from GoMap (maps), dict
    (structs: insertion order), list, str, bytes, bool, int, float, None."""
    out = []
    _go_encode(v, out)
    return "".join(out)


def _go_encode(v, out):
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, float):
        out.append(go_float(v))
    elif isinstance(v, str):
        out.append(go_string(v))
    elif isinstance(v, bytes):
        out.append(go_string(v.decode("utf-8", "surrogateescape")))
    elif isinstance(v, dict):
        items = sorted(v.items()) if isinstance(v, GoMap) else v.items()
        out.append("{")
        first = True
        for k, val in items:
            if not first:
                out.append(",")
            first = False
            out.append(go_string(k))
            out.append(":")
            _go_encode(val, out)
        out.append("}")
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, val in enumerate(v):
            if i:
                out.append(",")
            _go_encode(val, out)
        out.append("]")
    else:
        raise TypeError("cannot encode %r" % (v,))


def go_time(ns, micro=False):
    """A UTC time.Time marshalled to JSON (RFC 3339 with nanoseconds).
    micro=True: as read back from Postgres (microsecond precision)."""
    if micro:
        ns = (ns + 500) // 1000 * 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) \
        + go_frac(ns) + "Z"


def go_rfc3339(t):
    """time.Format(time.RFC3339) of a UTC time (whole seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))


def go_clean(p):
    """path.Clean."""
    if p == "":
        return "."
    rooted = p.startswith("/")
    parts = []
    for comp in p.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(comp)
    s = "/".join(parts)
    if rooted:
        s = "/" + s
    return s or "."


def go_join(*elems):
    """filepath.Join."""
    elems = [e for e in elems if e != ""]
    return go_clean("/".join(elems)) if elems else ""


def go_base(p):
    """filepath.Base."""
    if p == "":
        return "."
    p = p.rstrip("/")
    if p == "":
        return "/"
    return p.rsplit("/", 1)[-1]


def go_quote(s):
    """strconv.Quote (what fmt's %q does) of a string (surrogateescape str)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0xDC80 <= o <= 0xDCFF:          # an invalid byte
            out.append("\\x%02x" % (o - 0xDC00))
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                        "\r": "\\r", "\t": "\\t", "\v": "\\v"}[ch])
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif o >= 0x80 and not ch.isprintable():
            out.append("\\u%04x" % o if o < 0x10000 else "\\U%08x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# unicode.IsSpace, which strings.Fields and strings.TrimSpace use.
GO_SPACES = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005" \
            "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_GO_FIELDS_RE = re.compile("[%s]+" % re.escape(GO_SPACES))


def go_fields(s):
    return [f for f in _GO_FIELDS_RE.split(s) if f]


def go_trim_space(s):
    return s.strip(GO_SPACES)


def blen(s):
    """len() of a Go string held as a surrogateescape str."""
    return len(s.encode("utf-8", "surrogateescape"))


# ------------------------------------------------------ Go JSON decoding

class GoNumber(str):
    """A JSON number literal, kept as text to check it like Go does."""


class GoObject(list):
    """A JSON object as its (key, value) pairs, in order, duplicates kept."""


class GoDecodeError(Exception):
    pass


def _json_value(raw, whole):
    """Parse JSON like Go: json.Unmarshal (whole=True: trailing data is an
    error) or json.Decoder.Decode (whole=False: only the first value counts).
    Invalid UTF-8 is accepted (Go replaces it inside strings)."""
    text = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise GoDecodeError("unexpected end of JSON input" if whole else "EOF")

    def bad_constant(name):
        raise ValueError("invalid constant")
    dec = json.JSONDecoder(parse_float=GoNumber, parse_int=GoNumber,
                           parse_constant=bad_constant, object_pairs_hook=GoObject)
    try:
        value, end = dec.raw_decode(stripped)
    except ValueError as e:
        pos = getattr(e, "pos", None)
        if pos is None or pos >= len(stripped):
            raise GoDecodeError("unexpected end of JSON input" if whole
                                else "unexpected EOF")
        raise GoDecodeError("invalid character %s looking for beginning of value"
                            % _go_char(stripped[pos]))
    if whole:
        rest = stripped[end:].lstrip(" \t\r\n")
        if rest:
            raise GoDecodeError("invalid character %s after top-level value"
                                % _go_char(rest[0]))
    return value


def _go_char(c):
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    return "'%s'" % c


def _fix_str(s):
    """Lone surrogates (invalid UTF-8, bad \\u escapes) -> U+FFFD, as Go does."""
    return re.sub("[\ud800-\udfff]", "\ufffd", s)


def _json_kind(v):
    """The JSON kind Go names in an UnmarshalTypeError."""
    if isinstance(v, GoObject):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, GoNumber):
        return "number"
    if isinstance(v, str):
        return "string"
    return "null"


def go_unmarshal(raw, schema, struct, whole):
    """Decode `raw` into a struct described by `schema` the way Go does.

    schema: {json_name: type} with types "string", "int", "int64", "uint",
    "bool?" (a *bool), "[]string", or a nested (struct name, schema) tuple.
    Fields match their JSON name exactly or case-insensitively; the last
    duplicate wins.  Returns a dict of the fields set.  Raises GoDecodeError
    with Go's message: the first type error, after decoding the rest."""
    value = _json_value(raw, whole)
    errors = []
    short = struct.rsplit(".", 1)[-1]
    result = _decode_struct(value, schema, struct, short, errors, top=True)
    if errors:
        raise GoDecodeError(errors[0])
    return result


def _decode_struct(value, schema, struct, path, errors, top=False):
    if value is None:
        return {}
    if not isinstance(value, GoObject):
        if top:
            errors.append("json: cannot unmarshal %s into Go value of type %s"
                          % (_json_kind(value), struct))
        else:
            errors.append("json: cannot unmarshal %s into Go struct field %s of type %s"
                          % (_json_kind(value), path, struct))
        return {}
    out = {}
    for key, val in value:
        name = key if key in schema else next(
            (n for n in schema if n.casefold() == key.casefold()), None)
        if name is None:
            continue
        typ = schema[name]
        field = "%s.%s" % (path, name)
        if isinstance(typ, tuple):
            if val is not None:
                out[name] = _decode_struct(val, typ[1], typ[0], field, errors)
            continue
        decoded = _decode_scalar(val, typ, field, errors)
        if decoded is not _SKIP:
            out[name] = decoded
    return out


_SKIP = object()
_GO_TYPE_NAMES = {"string": "string", "int": "int", "int64": "int64",
                  "uint": "uint", "bool?": "bool", "[]string": "[]string"}


def _decode_scalar(val, typ, field, errors):
    if val is None:
        return _SKIP
    kind = _json_kind(val)

    def fail(desc=kind, gotype=_GO_TYPE_NAMES[typ]):
        errors.append("json: cannot unmarshal %s into Go struct field %s of type %s"
                      % (desc, field, gotype))
        return _SKIP
    if typ == "string":
        return _fix_str(val) if kind == "string" else fail()
    if typ == "bool?":
        return val if kind == "bool" else fail()
    if typ in ("int", "int64", "uint"):
        if kind != "number":
            return fail()
        if not re.fullmatch(r"-?[0-9]+", val):
            return fail("number " + val)
        n = int(val)
        lo, hi = (0, 2 ** 64 - 1) if typ == "uint" else (-2 ** 63, 2 ** 63 - 1)
        if not lo <= n <= hi:
            return fail("number " + val)
        return n
    if typ == "[]string":
        if kind != "array":
            return fail()
        items = []
        for x in val:
            if _json_kind(x) == "string":
                items.append(_fix_str(x))
            else:
                if x is not None:
                    fail(_json_kind(x), "string")
                items.append("")
        return items
    raise AssertionError(typ)


CREATE_SCHEMA = {
    "name": "string", "image": "string", "custom_image": "string",
    "role": "string",
    "shell": ("models.ShellConfig", {
        "enhanced": "bool?", "theme": "string", "autosuggestions": "bool?",
        "syntax_highlight": "bool?", "history_search": "bool?",
        "git_aliases": "bool?", "system_stats": "bool?", "use_tmux": "bool?"}),
    "memory_mb": "int64", "cpu_shares": "int64", "disk_mb": "int64",
}
EXEC_SCHEMA = {
    "command": "string", "cmd": "[]string", "workdir": "string",
    "env": "[]string", "user": "string", "timeout_seconds": "int",
}
TERMINAL_SCHEMA = {"type": "string", "data": "string", "cols": "uint", "rows": "uint"}


def decode_terminal_message(raw):
    """The TerminalMessage json.Unmarshal fills in, or None when Unmarshal
    returns an error (the server then writes the frame to the shell raw)."""
    try:
        msg = go_unmarshal(raw, TERMINAL_SCHEMA, "handlers.TerminalMessage", True)
    except GoDecodeError:
        return None
    return msg


# ------------------------------------------------- output sanitising

_MOUSE_RE = re.compile(r"\x1b\[<[0-9;]*[Mm]")


def terminal_text(data):
    """sanitizeUTF8 (drop invalid bytes) + filterMouseTracking of one read."""
    return _MOUSE_RE.sub("", data.decode("utf-8", "ignore"))


def exec_text(data):
    """sanitizeExecText: strip NULs, each run of invalid bytes -> U+FFFD."""
    s = data.replace(b"\0", b"").decode("utf-8", "surrogateescape")
    return re.sub("[\udc80-\udcff]+", "\ufffd", s)


# ------------------------------------------- Docker multiplexed streams

def mux_frame(stream, data):
    return bytes((stream, 0, 0, 0)) + struct.pack(">I", len(data)) + data


def demux_docker_stream(raw):
    """exec.go demuxDockerStream."""
    if not raw:
        return "", "", ""
    if len(raw) >= 8 and raw[0] in (1, 2) and raw[1:4] == b"\0\0\0":
        out, err = bytearray(), bytearray()
        while len(raw) >= 8:
            kind = raw[0]
            size = struct.unpack(">I", raw[4:8])[0]
            raw = raw[8:]
            if size > len(raw):
                out += raw
                break
            chunk, raw = raw[:size], raw[size:]
            (err if kind == 2 else out).extend(chunk)
        o, e = exec_text(bytes(out)), exec_text(bytes(err))
        combined = o
        if e:
            if combined and not combined.endswith("\n"):
                combined += "\n"
            combined += e
        return o, e, combined
    text = exec_text(raw)
    return text, "", text


# --------------------------------------------------- ls output parsing

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep",
           "oct", "nov", "dec"]
ZERO_TIME = "0001-01-01T00:00:00Z"


def _getnum(s, fixed):
    if not s[:1].isdigit() or not s[:1].isascii():
        return None, s
    if not (len(s) > 1 and s[1].isascii() and s[1].isdigit()):
        if fixed:
            return None, s
        return int(s[0]), s[1:]
    return int(s[:2]), s[2:]


def _is_leap(y):
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _days_in(month, year):
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def parse_ls_time(text, now_year):
    """The server's time.Parse attempts ("Jan 2 15:04", then "Jan 2 2006";
    the "_2" layouts accept nothing more here) plus its year fix-up."""
    for with_year in (False, True):
        v = text
        if len(v) < 3 or v[:3].lower() not in _MONTHS:
            continue
        month = _MONTHS.index(v[:3].lower()) + 1
        v = v[3:]
        if not v.startswith(" "):
            continue
        v = v.lstrip(" ")
        day, v = _getnum(v, False)
        if day is None or not v.startswith(" "):
            continue
        v = v.lstrip(" ")
        if with_year:
            if len(v) < 4:
                continue
            p, v = v[:4], v[4:]
            sign = -1 if p[0] == "-" else 1
            digits = p[1:] if p[0] in "+-" else p
            if not digits or not digits.isascii() or not digits.isdigit():
                continue
            year, hour, minute = sign * int(digits), 0, 0
        else:
            hour, v = _getnum(v, False)
            if hour is None or hour >= 24 or not v.startswith(":"):
                continue
            minute, v = _getnum(v[1:], True)
            if minute is None or minute >= 60:
                continue
            year = 0
        if v:
            continue
        if day < 1 or day > _days_in(month, year):
            continue
        if year == 0:                    # "If no year, use current year"
            year = now_year
            if month == 2 and day == 29 and not _is_leap(year):
                month, day = 3, 1        # AddDate normalises Feb 29
        if not 0 <= year <= 9999:
            return ZERO_TIME
        return "%04d-%02d-%02dT%02d:%02d:00Z" % (year, month, day, hour, minute)
    return ZERO_TIME


def _sscanf_int(s):
    m = re.match(r"[+-]?[0-9]+", s)
    if not m:
        return 0
    n = int(m.group(0))
    return n if -2 ** 63 <= n < 2 ** 63 else 0


def parse_list_output(output, base):
    """files.go parseListOutput on the raw attach stream (bytes)."""
    files = []
    clean = output
    if len(output) > 8 and output[0] in (1, 2):
        # "Docker multiplexed stream - find first newline and start from there"
        nl = output.find(b"\n", 0, 100)
        if nl >= 0:
            clean = output[nl + 1:]
    now_year = time.gmtime().tm_year
    for raw_line in clean.split(b"\n"):
        line = go_trim_space(raw_line.decode("utf-8", "surrogateescape"))
        if line == "" or line.startswith("total"):
            continue
        if blen(line) < 10:
            continue
        fields = go_fields(line)
        if len(fields) < 8:
            continue
        mode = fields[0]
        if blen(mode) < 10:
            continue
        if mode[0] not in "dlcbsp-":
            continue
        name = " ".join(fields[8:])
        if name == "":
            name = fields[-1]
        if name in (".", ".."):
            continue
        files.append({
            "name": name,
            "path": go_join(base, name),
            "size": _sscanf_int(fields[4]),
            "mode": mode,
            "mod_time": parse_ls_time("%s %s %s" % (fields[5], fields[6], fields[7]),
                                      now_year),
            "is_dir": mode[0] == "d",
        })
    return files or None


# ======================================================== HTTP helpers

def json_response(data, status=200, headers=None):
    """gin's c.JSON."""
    return web.Response(status=status, body=go_json(data).encode(),
                        content_type="application/json", charset="utf-8",
                        headers=headers)


def error(http_status, message, /, **extra):
    """c.JSON(status, gin.H{"error": message, ...})."""
    body = GoMap(error=message)
    body.update(extra)
    return json_response(body, http_status)


class DockerError(Exception):
    """An error returned by the Docker client (message as the client shows it)."""

    def __init__(self, status, message):
        super().__init__("Error response from daemon: " + message)
        self.status = status


def preserve_trailing(cleaned, original):
    """archive.PreserveTrailingDotOrSeparator."""
    if go_base(cleaned) != "." and go_base(original) == ".":
        if not cleaned.endswith("/"):
            cleaned += "/"
        cleaned += "."
    if not cleaned.endswith("/") and original.endswith("/"):
        cleaned += "/"
    return cleaned
