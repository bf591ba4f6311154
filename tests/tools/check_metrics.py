#!/usr/bin/python3
"""Strict check of a Prometheus text exposition (format 0.0.4) on stdin.

Used as a filter by the integration tests: on success the text is copied to
stdout unchanged, so `curl /metrics | check_metrics.py | awk ...` reads
values only from output that passed. On the first problem it prints the line
and the reason to stderr and exits 1.

Two independent checks:
- the parser of the official Python client (Debian python3-prometheus-client)
  must accept the text and find the same series as the check below;
- a line-by-line check of what that parser tolerates but Prometheus users
  rely on: HELP and TYPE once per family and before its samples, samples of
  a family together, no duplicate series, names and labels well formed,
  counters named *_total and never negative, histograms with increasing
  `le`, cumulative buckets, +Inf equal to _count, and _sum present.
"""
import math
import re
import sys

from prometheus_client.parser import text_string_to_metric_families

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    rf"^(?P<name>{NAME})(?:\{{(?P<labels>(?:{LABEL})(?:,{LABEL})*)?,?\}})?"
    r" (?P<value>[^ ]+)(?: (?P<ts>-?[0-9]+))?$")
LABEL_PAIR = re.compile(rf'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
HELP = re.compile(rf"^# HELP (?P<name>{NAME}) (?P<text>.*)$")
TYPE = re.compile(rf"^# TYPE (?P<name>{NAME}) (?P<type>counter|gauge|histogram|summary|untyped)$")
PREFIX = "event_piper_"


class Invalid(Exception):
    pass


def number(text):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", text):
        raise Invalid(f"value {text!r} is not a number")
    return float(text)


def family_of(sample_name, types):
    """The family a sample belongs to, following the histogram suffixes."""
    if sample_name in types:
        return sample_name
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample_name[: -len(suffix)]
        if sample_name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
            return base
    raise Invalid(f"sample {sample_name} has no TYPE line before it")


def check_histogram(name, samples):
    buckets = [(s["labels"], s["value"]) for s in samples if s["name"] == name + "_bucket"]
    by_series = {}
    for labels, value in buckets:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        if "le" not in labels:
            raise Invalid(f"{name}_bucket without le")
        by_series.setdefault(rest, []).append((number(labels["le"]), value))
    if not by_series:
        raise Invalid(f"histogram {name} has no buckets")
    totals = {tuple(sorted(s["labels"].items())): s["value"] for s in samples if s["name"] == name + "_count"}
    sums = {tuple(sorted(s["labels"].items())) for s in samples if s["name"] == name + "_sum"}
    for rest, series in by_series.items():
        bounds = [le for le, _ in series]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise Invalid(f"{name}: le bounds not strictly increasing: {bounds}")
        if bounds[-1] != math.inf:
            raise Invalid(f"{name}: no le=\"+Inf\" bucket")
        counts = [v for _, v in series]
        if counts != sorted(counts):
            raise Invalid(f"{name}: bucket counts not cumulative: {counts}")
        if rest not in totals or totals[rest] != counts[-1]:
            raise Invalid(f"{name}: _count {totals.get(rest)} differs from the +Inf bucket {counts[-1]}")
        if rest not in sums:
            raise Invalid(f"{name}: no _sum")


def check(text):
    if not text.endswith("\n"):
        raise Invalid("the exposition does not end with a newline")
    helps, types, samples, seen_series = {}, {}, [], set()
    finished, current, sampled = set(), None, set()
    for number_, line in enumerate(text.split("\n")[:-1], 1):
        try:
            if line.startswith("#"):
                m = HELP.match(line) or TYPE.match(line)
                if not m:
                    raise Invalid("comment is neither HELP nor TYPE")
                family = m["name"]
            else:
                m = SAMPLE.match(line)
                if not m:
                    raise Invalid("not a sample line")
                family = family_of(m["name"], types)
            if family != current:
                if family in finished:
                    raise Invalid(f"{family} appears again after other families")
                if current is not None:
                    finished.add(current)
                current = family
            if line.startswith("#"):
                kind = line.split()[1]
                table = helps if kind == "HELP" else types
                if family in table:
                    raise Invalid(f"second {kind} for {family}")
                if family in sampled:
                    raise Invalid(f"{kind} for {family} after its samples")
                table[family] = m["text"] if kind == "HELP" else m["type"]
                continue
            if family not in helps:
                raise Invalid(f"{family} has no HELP line")
            sampled.add(family)
            labels = dict(LABEL_PAIR.findall(m["labels"] or ""))
            if len(labels) != (m["labels"] or "").count('="'):
                raise Invalid("repeated label name")
            series = (m["name"], tuple(sorted(labels.items())))
            if series in seen_series:
                raise Invalid("duplicate series")
            seen_series.add(series)
            value = number(m["value"])
            if types[family] == "counter":
                if not family.endswith("_total"):
                    raise Invalid(f"counter {family} is not named *_total")
                if not value >= 0:
                    raise Invalid(f"counter {family} is {value}")
            samples.append({"family": family, "name": m["name"], "labels": labels, "value": value})
        except Invalid as e:
            raise Invalid(f"line {number_}: {e}: {line!r}") from None
    for name, kind in types.items():
        if not name.startswith(PREFIX):
            raise Invalid(f"{name} lacks the {PREFIX} prefix")
        if kind == "histogram":
            check_histogram(name, [s for s in samples if s["family"] == name])
        if not any(s["family"] == name for s in samples):
            raise Invalid(f"{name} has a TYPE but no samples")

    # The reference parser must agree on every series.
    theirs = set()
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.value != next(x["value"] for x in samples if x["name"] == s.name and x["labels"] == s.labels) \
                    and not (math.isnan(s.value)):
                raise Invalid(f"prometheus_client reads {s.name}{s.labels} as {s.value}")
            theirs.add((s.name, tuple(sorted(s.labels.items()))))
    if theirs != seen_series:
        raise Invalid(f"prometheus_client sees other series: {sorted(theirs ^ seen_series)[:5]}")


def main():
    text = sys.stdin.read()
    try:
        check(text)
    except Exception as e:  # the reference parser raises ValueError and others
        print(f"check_metrics: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
