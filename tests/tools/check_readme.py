#!/usr/bin/env python3
"""Checks that README.md's reference tables say what the code says.

    tests/tools/check_readme.py [--root DIR]    compare; exit 1 on any difference
    tests/tools/check_readme.py --self-test     prove the comparisons can fail

Four tables, each read from its one source in the code:

  settings   the settings[] table of src/ops/config.c (name, default) against
             every README table whose first header cell is "setting": each
             code setting must be in a table with a "default" column, with
             that default, and each README setting must exist.
  errors     the HTTP_ERRORS(X) table of src/net/http_error.h (code, status)
             against the README table headed "| status | `error` | when |".
  metrics    the families metrics_render() in src/ops/metrics.c registers
             (name, type, label) against the README table headed
             "| metric | type | meaning |".
  routes     the routes[] table of src/api/router.c (path, methods) against
             the backticked "METHOD /path" requests of the README table headed
             "| request | answer |"; "/ws/*" is written "/ws/{consumer_id}".

The C side is read with a small tokenizer (comments, string literals with
escapes and concatenation, nested braces), not with patterns over the whole
file, so reformatting the code does not fool it. Every difference is printed
on its own line, naming the file, the item and what differs.
"""

import argparse
import os
import re
import sys

# ---- a C tokenizer, enough for initializers and calls ----

TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<char>'(?:[^'\\\n]|\\.)*')
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<number>\d[\w.]*)
  | (?P<punct>->|\|\||&&|<<|>>|[{}()\[\],;=|&+\-*/<>.!?:~%^#])
    """,
    re.S | re.X,
)

ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


def c_string_value(literal):
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(1)), body)


def tokenize(text):
    """Returns (kind, value) pairs; adjacent string literals are joined."""
    tokens = []
    pos = 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if m is None:
            raise ValueError("cannot read C at offset %d: %r" % (pos, text[pos : pos + 20]))
        pos = m.end()
        kind = m.lastgroup
        if kind == "space":
            continue
        value = m.group(kind)
        if kind == "string":
            value = c_string_value(value)
            if tokens and tokens[-1][0] == "string":
                tokens[-1] = ("string", tokens[-1][1] + value)
                continue
        tokens.append((kind, value))
    return tokens


def find_sequence(tokens, values, start=0):
    """Index just after the first run of tokens whose values are `values`."""
    n = len(values)
    for i in range(start, len(tokens) - n + 1):
        if all(tokens[i + k][1] == values[k] for k in range(n)):
            return i + n
    return -1


def split_group(tokens, start):
    """tokens[start] opens a ( or {; returns (items, end) where items are the
    comma-separated token lists at the group's top level and end is the index
    after its closing token."""
    close = {"(": ")", "{": "}", "[": "]"}
    assert tokens[start][1] in close
    depth = 0
    items = [[]]
    i = start
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "punct" and value in close:
            depth += 1
            if depth > 1:
                items[-1].append(tokens[i])
        elif kind == "punct" and value in close.values():
            depth -= 1
            if depth == 0:
                if not items[-1]:
                    items.pop()  # a trailing comma
                return items, i + 1
            items[-1].append(tokens[i])
        elif kind == "punct" and value == "," and depth == 1:
            items.append([])
        else:
            items[-1].append(tokens[i])
        i += 1
    raise ValueError("unbalanced group")


def initializer_rows(tokens, name):
    """The elements { ... } of `static const struct X name[] = { ... };`, each
    as its list of fields (token lists)."""
    at = find_sequence(tokens, [name, "[", "]", "="])
    if at < 0 or tokens[at][1] != "{":
        raise ValueError("no initializer for %s[]" % name)
    elements, _ = split_group(tokens, at)
    rows = []
    for element in elements:
        if not element or element[0][1] != "{":
            raise ValueError("an element of %s[] is not a braced initializer" % name)
        fields, _ = split_group(element, 0)
        rows.append(fields)
    return rows


def one_string(field, what):
    if len(field) != 1 or field[0][0] != "string":
        raise ValueError("%s is not a string literal: %s" % (what, " ".join(v for _, v in field)))
    return field[0][1]


# ---- the code's tables ----


def code_settings(text):
    """[(env name, default)] in table order."""
    out = []
    for fields in initializer_rows(tokenize(text), "settings"):
        name = one_string(fields[0], "a setting's name")
        out.append((name, one_string(fields[3], "the default of " + name)))
    return out


def code_errors(text):
    """[(code, status)] from the X(name, code, status, message) list."""
    m = re.search(r"^#define HTTP_ERRORS\(X\)((?:[^\n]*\\\n)*[^\n]*)", text, re.M)
    if m is None:
        raise ValueError("no #define HTTP_ERRORS(X)")
    tokens = tokenize(m.group(1).replace("\\\n", "\n"))
    out = []
    i = 0
    while i < len(tokens):
        if tokens[i] == ("ident", "X") and i + 1 < len(tokens) and tokens[i + 1][1] == "(":
            args, i = split_group(tokens, i + 1)
            if len(args) != 4 or args[2][0][0] != "number":
                raise ValueError("an X(...) entry does not have 4 arguments")
            code = one_string(args[1], "an error code")
            out.append((code, int(args[2][0][1])))
        else:
            i += 1
    return out


def code_metrics(text):
    """{family: (type, set of labels)} registered by metrics_render()."""
    tokens = tokenize(text)
    start = find_sequence(tokens, ["metrics_render", "("])
    if start < 0:
        raise ValueError("no metrics_render()")
    body_at = start
    while tokens[body_at][1] != "{":
        body_at += 1
    _, end = split_group(tokens, body_at)
    body = tokens[body_at:end]
    kinds = {"counter": "counter", "gauge": "gauge", "labelled": "counter"}
    families = {}
    formats = []
    i = 0
    while i < len(body):
        kind, value = body[i]
        if kind == "ident" and i + 1 < len(body) and body[i + 1][1] == "(":
            if value in kinds or value == "family":
                args, i = split_group(body, i + 1)
                name = one_string(args[1], "the name in a %s() call" % value)
                if value == "family":
                    mtype = one_string(args[2], "the type of " + name)
                    labels = set()
                else:
                    mtype = kinds[value]
                    labels = (
                        {one_string(args[3], "the label of " + name)}
                        if value == "labelled"
                        else set()
                    )
                if name in families:
                    raise ValueError("metric %s is registered twice" % name)
                families[name] = (mtype, labels)
                continue
            if value == "evbuffer_add_printf":
                args, i = split_group(body, i + 1)
                # The format's first literal names the series (a PRIu64
                # macro and more literals may follow).
                if len(args) > 1 and args[1] and args[1][0][0] == "string":
                    formats.append(args[1][0][1])
                continue
        i += 1
    # Labels of families written sample by sample: "name{label=...".
    for fmt in formats:
        m = re.match(r"(\w+)\{(\w+)=", fmt)
        if m and m.group(1) in families and families[m.group(1)][0] != "histogram":
            families[m.group(1)][1].add(m.group(2))
    return families


ROUTE_METHODS = {
    "ROUTE_GET": "GET",
    "ROUTE_HEAD": "HEAD",
    "ROUTE_POST": "POST",
    "ROUTE_OPTIONS": "OPTIONS",
}


def code_routes(text):
    """[(path, set of methods)] in table order."""
    out = []
    for fields in initializer_rows(tokenize(text), "routes"):
        path = one_string(fields[0], "a route's path")
        methods = set()
        for kind, value in fields[1]:
            if kind == "ident":
                if value not in ROUTE_METHODS:
                    raise ValueError("route %s: unknown method bit %s" % (path, value))
                methods.add(ROUTE_METHODS[value])
        out.append((path, methods))
    return out


# ---- README's tables ----


def split_row(line):
    """Cells of a Markdown table row (pipes inside backticks do not split)."""
    cells, cell, in_code = [], "", False
    for ch in line.strip()[1:]:
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += ch
    return cells


def readme_tables(text):
    """[(line number of the header, header cells, [(line number, cells)])]."""
    lines = text.split("\n")
    tables = []
    i = 0
    while i < len(lines):
        if (
            lines[i].startswith("|")
            and i + 1 < len(lines)
            and re.match(r"^\|(\s*:?-+:?\s*\|)+\s*$", lines[i + 1])
        ):
            header = [c.lower() for c in split_row(lines[i])]
            rows = []
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append((j + 1, split_row(lines[j])))
                j += 1
            tables.append((i + 1, header, rows))
            i = j
        else:
            i += 1
    return tables


def backticked(cell):
    return re.findall(r"`([^`]*)`", cell)


def tables_headed(tables, first, what):
    found = [t for t in tables if t[1] and t[1][0] == first]
    if not found:
        raise ValueError(
            "README has no %s table (a table whose first header cell is %r)" % (what, first)
        )
    return found


# ---- the comparisons; each returns a list of differences ----


def normalise_default(text):
    text = text.strip()
    return "" if text in ("empty", "") else text


def compare_settings(code, tables):
    diffs = []
    documented = {}  # name -> (line, default or None)
    for _, header, rows in tables_headed(tables, "setting", "settings"):
        has_default = len(header) > 1 and header[1] == "default"
        for line, cells in rows:
            names = backticked(cells[0])
            if not names:
                diffs.append("README.md:%d: settings row names no `SETTING`: %s" % (line, cells[0]))
                continue
            defaults = [None] * len(names)
            if has_default:
                values = [normalise_default(v.replace("`", "")) for v in cells[1].split(" / ")]
                if len(values) == 1:
                    values *= len(names)
                if len(values) != len(names):
                    diffs.append(
                        "README.md:%d: %d settings but %d defaults in %r"
                        % (line, len(names), len(values), cells[1])
                    )
                else:
                    defaults = values
            # A setting has one row with a default; tables without a default
            # column (the authentication one) may mention it again.
            for name, default in zip(names, defaults):
                if default is not None and name in documented and documented[name][1] is not None:
                    diffs.append(
                        "README.md:%d: setting %s has a default in two rows (also line %d)"
                        % (line, name, documented[name][0])
                    )
                if name not in documented or default is not None:
                    documented[name] = (line, default)
    code_names = dict(code)
    for name, (line, default) in sorted(documented.items(), key=lambda kv: kv[1][0]):
        if name not in code_names:
            diffs.append(
                "README.md:%d: setting %s does not exist in src/ops/config.c" % (line, name)
            )
        elif default is not None and default != code_names[name]:
            diffs.append(
                "README.md:%d: setting %s: README default %r, code default %r"
                % (line, name, default, code_names[name])
            )
    for name, default in code:
        if name not in documented:
            diffs.append(
                "src/ops/config.c: setting %s (default %r) is missing from README" % (name, default)
            )
        elif documented[name][1] is None:
            diffs.append(
                "README.md:%d: setting %s has no default in any README settings table"
                % (documented[name][0], name)
            )
    return diffs


def compare_errors(code, tables):
    diffs = []
    table = [
        t
        for t in tables_headed(tables, "status", "error")
        if len(t[1]) > 1 and t[1][1] == "`error`"
    ]
    if len(table) != 1:
        return [
            "README.md: expected one error table headed | status | `error` | when |, found %d"
            % len(table)
        ]
    documented = {}
    for line, cells in table[0][2]:
        if not re.fullmatch(r"\d{3}", cells[0]):
            diffs.append(
                "README.md:%d: error row status %r is not a status code" % (line, cells[0])
            )
            continue
        codes = backticked(cells[1])
        if not codes:
            diffs.append("README.md:%d: error row names no `code`" % line)
        for code_name in codes:
            if code_name in documented:
                diffs.append("README.md:%d: error %s is listed twice" % (line, code_name))
            documented[code_name] = (line, int(cells[0]))
    code_status = dict(code)
    for code_name, (line, status) in documented.items():
        if code_name not in code_status:
            diffs.append(
                "README.md:%d: error %s does not exist in src/net/http_error.h" % (line, code_name)
            )
        elif status != code_status[code_name]:
            diffs.append(
                "README.md:%d: error %s: README status %d, code status %d"
                % (line, code_name, status, code_status[code_name])
            )
    for code_name, status in code:
        if code_name not in documented:
            diffs.append(
                "src/net/http_error.h: error %s (%d) is missing from README" % (code_name, status)
            )
    return diffs


def compare_metrics(code, tables):
    diffs = []
    documented = {}
    for _, _, rows in tables_headed(tables, "metric", "metrics"):
        for line, cells in rows:
            names = backticked(cells[0])
            if not names:
                diffs.append("README.md:%d: metrics row names no `metric`" % line)
            mtype = cells[1].strip() if len(cells) > 1 else ""
            for text in names:
                m = re.fullmatch(r"(event_piper_\w+)(?:\{(\w+(?:,\s*\w+)*)\})?", text)
                if m is None:
                    diffs.append(
                        "README.md:%d: %r is not a full metric name (event_piper_...{label})"
                        % (line, text)
                    )
                    continue
                labels = set(re.split(r",\s*", m.group(2))) if m.group(2) else set()
                if m.group(1) in documented:
                    diffs.append("README.md:%d: metric %s is listed twice" % (line, m.group(1)))
                documented[m.group(1)] = (line, mtype, labels)
    for name, (line, mtype, labels) in documented.items():
        if name not in code:
            diffs.append(
                "README.md:%d: metric %s is not registered in src/ops/metrics.c" % (line, name)
            )
            continue
        code_type, code_labels = code[name]
        if mtype != code_type:
            diffs.append(
                "README.md:%d: metric %s: README type %r, code type %r"
                % (line, name, mtype, code_type)
            )
        if labels != code_labels:
            diffs.append(
                "README.md:%d: metric %s: README labels {%s}, code labels {%s}"
                % (line, name, ",".join(sorted(labels)), ",".join(sorted(code_labels)))
            )
    for name, (code_type, code_labels) in code.items():
        if name not in documented:
            label = "{%s}" % ",".join(sorted(code_labels)) if code_labels else ""
            diffs.append(
                "src/ops/metrics.c: metric %s%s (%s) is missing from README"
                % (name, label, code_type)
            )
    return diffs


REQUEST = re.compile(r"(GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS) (/[^\s?`]*)")


def route_pattern(readme_path):
    """/ws/{consumer_id} -> /ws/*, the form of router.c's table."""
    return re.sub(r"\{[^}/]+\}$", "*", readme_path)


def compare_routes(code, tables):
    diffs = []
    table = [
        t
        for t in tables_headed(tables, "request", "HTTP interface")
        if len(t[1]) > 1 and t[1][1] == "answer"
    ]
    if len(table) != 1:
        return [
            "README.md: expected one HTTP interface table headed | request | answer |, found %d"
            % len(table)
        ]
    documented = {}  # path -> set of methods
    code_methods = dict(code)
    for line, cells in table[0][2]:
        for text in backticked(cells[0]):
            m = REQUEST.fullmatch(text.split("?", 1)[0].strip()) or REQUEST.match(text)
            if m is None:
                continue  # a header or a parameter, not a request
            method, path = m.group(1), route_pattern(m.group(2))
            if path not in code_methods:
                diffs.append(
                    "README.md:%d: %s %s: no such route in src/api/router.c"
                    % (line, method, m.group(2))
                )
            elif method not in code_methods[path]:
                diffs.append(
                    "README.md:%d: %s %s: the route takes only %s"
                    % (line, method, m.group(2), ", ".join(sorted(code_methods[path])))
                )
            documented.setdefault(path, set()).add(method)
    for path, methods in code:
        if path not in documented:
            diffs.append(
                "src/api/router.c: route %s (%s) is missing from README's HTTP interface table"
                % (path, ", ".join(sorted(methods)))
            )
        else:
            # Every method but HEAD (which README covers in one sentence).
            for method in sorted(methods - documented[path] - {"HEAD"}):
                diffs.append(
                    "src/api/router.c: %s %s is missing from README's HTTP interface table"
                    % (method, path)
                )
    return diffs


# ---- driving it ----

SOURCES = {
    "settings": ("src/ops/config.c", code_settings, compare_settings),
    "errors": ("src/net/http_error.h", code_errors, compare_errors),
    "metrics": ("src/ops/metrics.c", code_metrics, compare_metrics),
    "routes": ("src/api/router.c", code_routes, compare_routes),
}


def read(root, path):
    with open(os.path.join(root, path), encoding="utf-8") as f:
        return f.read()


def check(root, readme_text):
    """All differences, as lines; parse failures count as differences."""
    diffs = []
    try:
        tables = readme_tables(readme_text)
    except ValueError as e:
        return ["README.md: %s" % e]
    for what, (path, parse, compare) in SOURCES.items():
        try:
            code = parse(read(root, path))
            if not code:
                diffs.append("%s: no %s found" % (path, what))
                continue
            diffs += compare(code, tables)
        except (ValueError, IndexError) as e:
            diffs.append("%s (%s): cannot compare: %s" % (path, what, e))
    return diffs


def self_test(root):
    """Breaks the README (and the code, in memory) in each way the checker
    must notice, and fails if any break goes unnoticed."""
    readme = read(root, "README.md")
    base = check(root, readme)
    if base:
        print("self-test needs a README that passes; it does not:")
        print("\n".join(base))
        return 1

    def drop_line(containing):
        lines = readme.split("\n")
        hits = [i for i, l in enumerate(lines) if l.startswith("|") and containing in l]
        assert hits, containing
        del lines[hits[0]]
        return "\n".join(lines)

    cases = [
        ("a setting row removed", drop_line("| `MAX_BODY_BYTES` |"), "MAX_BODY_BYTES"),
        (
            "a setting's default changed",
            readme.replace("| `PORT` | `4000` |", "| `PORT` | `4001` |"),
            "PORT",
        ),
        (
            "an unknown setting",
            readme.replace("| `PORT` |", "| `PORT`, `NO_SUCH_SETTING` |"),
            "NO_SUCH_SETTING",
        ),
        ("an error row removed", drop_line("| `too_many_streams` |"), "too_many_streams"),
        (
            "an error's status changed",
            readme.replace("| 429 | `too_many_streams`", "| 503 | `too_many_streams`"),
            "too_many_streams",
        ),
        (
            "an unknown error",
            readme.replace("`not_found`", "`not_found`, `no_such_error`", 1),
            "no_such_error",
        ),
        (
            "a metric row removed",
            drop_line("| `event_piper_connections_limited_total` |"),
            "connections_limited_total",
        ),
        (
            "a metric's label changed",
            readme.replace(
                "`event_piper_streams_open{transport}`", "`event_piper_streams_open{kind}`"
            ),
            "streams_open",
        ),
        (
            "a metric's type changed",
            readme.replace(
                "| `event_piper_replay_jobs` | gauge |", "| `event_piper_replay_jobs` | counter |"
            ),
            "replay_jobs",
        ),
        (
            "an unknown metric",
            readme.replace(
                "`event_piper_replay_jobs`", "`event_piper_replay_jobs`, `event_piper_gone_total`"
            ),
            "gone_total",
        ),
        ("a route row removed", drop_line("| `POST /auth/token` "), "/auth/token"),
        (
            "an unknown route",
            readme.replace("`GET /healthz`", "`GET /healthz`, `GET /status`"),
            "/status",
        ),
        (
            "a method a route does not take",
            readme.replace("`GET /healthz`", "`GET /healthz`, `POST /healthz`"),
            "POST /healthz",
        ),
    ]
    failed = 0
    for what, broken, expect in cases:
        if broken == readme:
            print("self-test: %s: the README text to break was not found" % what)
            failed += 1
            continue
        diffs = check(root, broken)
        if not any(expect in d for d in diffs):
            print("self-test: %s: not noticed (%s)" % (what, diffs))
            failed += 1
    # A setting added to the code, as a merge would: noticed by name.
    config = read(root, "src/ops/config.c")
    added = config.replace(
        "static const struct setting settings[] = {",
        'static const struct setting settings[] = {\n    {"NEW_SETTING", SETTING_INT, 0, "7", 0, 9, NULL, "x"},',
        1,
    )
    diffs = compare_settings(code_settings(added), readme_tables(readme))
    if not any("NEW_SETTING" in d and "missing" in d for d in diffs):
        print("self-test: a setting added to the code: not noticed (%s)" % diffs)
        failed += 1
    print("check_readme self-test: %d passed, %d failed" % (len(cases) + 1 - failed, failed))
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    )
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        return self_test(args.root)
    diffs = check(args.root, read(args.root, "README.md"))
    for d in diffs:
        print(d)
    if diffs:
        print("README.md and the code disagree: %d difference(s)" % len(diffs))
        return 1
    print("README.md matches settings, errors, metrics and routes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
