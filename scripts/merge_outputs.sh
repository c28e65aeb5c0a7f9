#!/bin/sh
# Merge `stam batch` shard outputs into one file, one record per input.
#
#   scripts/merge_outputs.sh MERGED.jsonl results/shard-*.jsonl
#   scripts/merge_outputs.sh MERGED.csv   results/shard-*.csv
#
# All files must share MERGED's format (by extension: .csv = CSV, anything else = JSONL; CSV
# headers must match, i.e. the same --top-k). The settings each output was made with (its
# OUT.meta.json beside it) must agree: outputs of different weights, frames, top-k, ... are
# refused, naming the difference. `auto` counts as the precision it chose, as in `stam batch
# --resume`; the precision `auto` chose may differ between machines: that is said, not refused. MERGED.meta.json gets the common settings, so `stam batch --resume` on
# MERGED checks them as on any output (when an output has no settings file, none is written).
# For an input recorded more than once (shards of different runs, copies), a result beats an
# error record; among equals the first file given wins. Records are copied byte for byte and
# come out sorted by input so merges are reproducible. A torn last line (a shard killed
# mid-write and never resumed) is skipped with a warning. MERGED is written to a temporary file
# and renamed, so it is never half-written. Exit status: 0, or 1 with a message naming the file
# and the problem. Needs python3 (standard library).
set -eu
if [ "$#" -lt 2 ]; then
  echo "usage: $0 MERGED.{jsonl,csv} SHARD_OUTPUT..." >&2
  exit 2
fi
exec python3 - "$@" <<'PY'
import csv, io, json, os, sys, tempfile

merged, parts = sys.argv[1], sys.argv[2:]
is_csv = merged.lower().endswith(".csv")


def fail(msg):
    sys.exit("merge_outputs: " + msg)


def warn(msg):
    print("merge_outputs: " + msg, file=sys.stderr)


def read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")


if os.path.abspath(merged) in map(os.path.abspath, parts):
    fail("the merged file must not be one of the inputs")
out_dir = os.path.dirname(os.path.abspath(merged))
if not os.path.isdir(out_dir):
    fail(f"{merged}: folder {out_dir} does not exist")


def jsonl_records(path):
    lines = read_bytes(path).split(b"\n")
    if lines and lines[-1].strip(b"\0 \t\r"):
        warn(f"{path}: skipping a torn last line (rerun that shard with --resume)")
    for n, line in enumerate(lines[:-1], 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            fail(f"{path}:{n} is not a JSON line ({e})")
        if not isinstance(rec, dict) or not isinstance(rec.get("input"), str):
            fail(f"{path}:{n} is not a stam batch record")
        yield rec["input"], "error" not in rec, line + b"\n"


header = None


def csv_records(path):
    global header
    data = read_bytes(path)
    # A line break ends a row only outside quotes, i.e. after an even number of '"' (doubled
    # quotes count twice); anything after the last such break is a torn row. Each row is kept
    # as its bytes: stam's own quoting (of a carriage return in a name, say) is not redone.
    rows, start, quotes = [], 0, 0
    for i, b in enumerate(data):
        if b == 0x22:
            quotes += 1
        elif b == 0x0A and quotes % 2 == 0:
            rows.append(data[start : i + 1])
            start = i + 1
    if data[start:].strip(b"\0 \t\r"):
        warn(f"{path}: skipping a torn last row (rerun that shard with --resume)")
    for n, raw in enumerate(rows, 1):
        try:
            fields = next(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")), [])
        except (UnicodeDecodeError, csv.Error) as e:
            fail(f"{path}: row {n} is not CSV ({e})")
        if n == 1:
            if header is None:
                header = (fields, raw)
            elif fields != header[0]:
                fail(f"{path} has another header (another --top-k?)")
            continue
        if not fields:
            continue
        if len(fields) != len(header[0]):
            fail(f"{path}: row {n} has {len(fields)} fields, expected {len(header[0])}")
        yield fields[0], fields[-1] == "", raw


# The settings of each output (OUT.meta.json), compared key by key. A key only one side records
# (one a later stam added) is not a difference; `precision_used` (what `auto` chose on each
# machine) is only reported.
def read_settings(path):
    meta = path + ".meta.json"
    if not os.path.exists(meta):
        return None
    try:
        s = json.loads(read_bytes(meta))
    except ValueError as e:
        fail(f"{meta} is not a stam batch settings file ({e})")
    if not isinstance(s, dict):
        fail(f"{meta} is not a stam batch settings file (a JSON object)")
    return s


# `auto` stands for the precision it chose, as `stam batch --resume` takes it: `auto` that chose
# fp32 and an explicit fp32 made the same records.
def resolved_precision(s):
    p = s.get("precision")
    return s.get("precision_used", p) if p == "auto" else p


def same_setting(key, a, b, sa, sb):
    if key == "precision" and a != b:
        return resolved_precision(sa) == resolved_precision(sb)
    return a == b


settings, unchecked, used = None, [], {}
for path in parts:
    s = read_settings(path)
    if s is None:
        unchecked.append(path)
        continue
    if "precision_used" in s:
        used.setdefault(s["precision_used"], path)
    if settings is None:
        settings, first, first_raw = {k: v for k, v in s.items() if k != "precision_used"}, path, s
        continue
    diffs = [f"{k}: {settings[k]!r} in {first}, {v!r} in {path}" for k, v in s.items()
             if k != "precision_used" and k in settings
             and not same_setting(k, settings[k], v, first_raw, s)]
    if diffs:
        fail("outputs made with other settings cannot be merged: " + "; ".join(diffs))
    for k, v in s.items():
        if k != "precision_used":
            settings.setdefault(k, v)
if unchecked:
    warn(f"no settings file beside {', '.join(unchecked)}: its settings could not be checked, "
         f"and {merged}.meta.json is not written")
    settings = None
if len(used) > 1:
    warn("`auto` chose other precisions on other machines: " +
         ", ".join(f"{p} ({path} ...)" for p, path in used.items()))
elif settings is not None and used:
    settings["precision_used"] = next(iter(used))

best, dups = {}, 0
for path in parts:
    if path.lower().endswith(".csv") != is_csv:
        fail(f"{path} is not in the format of {merged}")
    for key, ok, rec in (csv_records if is_csv else jsonl_records)(path):
        old = best.get(key)
        if old is not None:
            dups += 1
            if old[0] or not ok:
                continue
        best[key] = (ok, rec)


def replace_with(path, data):
    """Writes `data` to a temporary file beside `path` and renames it over `path`."""
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=out_dir)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    os.replace(tmp, path)


body = b"".join(best[key][1] for key in sorted(best))
if is_csv and header:
    body = header[1] + body
meta = merged + ".meta.json"
try:
    replace_with(merged, body)
    if settings is not None:
        replace_with(meta, (json.dumps(settings, indent=2) + "\n").encode())
    elif os.path.exists(meta):
        os.remove(meta)  # the settings of an earlier merge are not this one's
except OSError as e:
    fail(f"cannot write {merged}: {e.strerror}")
errors = sum(1 for ok, _ in best.values() if not ok)
warn(f"{len(best)} inputs ({len(best) - errors} labelled, {errors} errors) from {len(parts)} "
     f"file(s), {dups} duplicate record(s) dropped -> {merged}")
PY
