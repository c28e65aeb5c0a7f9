#!/bin/sh
# Merge `stam batch` shard outputs into one file, one record per input.
#
#   scripts/merge_outputs.sh MERGED.jsonl results/shard-*.jsonl
#   scripts/merge_outputs.sh MERGED.csv   results/shard-*.csv
#
# All files must share MERGED's format (by extension: .csv = CSV, anything else = JSONL; CSV
# headers must match, i.e. the same --top-k). For an input recorded more than once (shards of
# different runs, copies), a result beats an error record; among equals the first file given
# wins. Records come out sorted by input so merges are reproducible. A torn last line (a shard
# killed mid-write and never resumed) is skipped with a warning. MERGED is written to a
# temporary file and renamed, so it is never half-written. Needs python3 (standard library).
set -eu
if [ "$#" -lt 2 ]; then
  echo "usage: $0 MERGED.{jsonl,csv} SHARD_OUTPUT..." >&2
  exit 2
fi
exec python3 - "$@" <<'PY'
import csv, io, json, os, sys, tempfile

merged, parts = sys.argv[1], sys.argv[2:]
is_csv = merged.lower().endswith(".csv")
if os.path.abspath(merged) in map(os.path.abspath, parts):
    sys.exit("merge_outputs: the merged file must not be one of the inputs")

def warn(msg):
    print("merge_outputs: " + msg, file=sys.stderr)

def jsonl_records(path):
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1].strip(b"\0 \t\r"):
        warn(f"{path}: skipping a torn last line (rerun that shard with --resume)")
    for n, line in enumerate(lines[:-1], 1):
        if not line.strip():
            continue
        rec = json.loads(line)
        if not isinstance(rec, dict) or not isinstance(rec.get("input"), str):
            sys.exit(f"merge_outputs: {path}:{n} is not a stam batch record")
        yield rec["input"], "error" not in rec, line.decode("utf-8") + "\n"

header = None
def csv_records(path):
    global header
    with open(path, "rb") as f:
        data = f.read()
    # A line break ends a row only outside quotes, i.e. after an even number of '"' (doubled
    # quotes count twice); anything after the last such break is a torn row.
    end, quotes = 0, 0
    for i, b in enumerate(data):
        if b == 0x22:
            quotes += 1
        elif b == 0x0A and quotes % 2 == 0:
            end = i + 1
    if data[end:].strip(b"\0 \t\r"):
        warn(f"{path}: skipping a torn last row (rerun that shard with --resume)")
    rows = list(csv.reader(io.StringIO(data[:end].decode("utf-8"), newline="")))
    if not rows:
        return
    if header is None:
        header = rows[0]
    elif rows[0] != header:
        sys.exit(f"merge_outputs: {path} has another header (another --top-k?)")
    for row in rows[1:]:
        if row and len(row) != len(header):
            sys.exit(f"merge_outputs: {path}: row with {len(row)} fields, expected {len(header)}")
        if row:
            yield row[0], row[-1] == "", row

best, dups = {}, 0
for path in parts:
    if path.lower().endswith(".csv") != is_csv:
        sys.exit(f"merge_outputs: {path} is not in the format of {merged}")
    for key, ok, rec in (csv_records if is_csv else jsonl_records)(path):
        old = best.get(key)
        if old is not None:
            dups += 1
            if old[0] or not ok:
                continue
        best[key] = (ok, rec)

out_dir = os.path.dirname(os.path.abspath(merged))
fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(merged) + ".", dir=out_dir)
with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
    if is_csv:
        w = csv.writer(f, lineterminator="\n")
        if header:
            w.writerow(header)
        for key in sorted(best):
            w.writerow(best[key][1])
    else:
        for key in sorted(best):
            f.write(best[key][1])
    f.flush()
    os.fsync(f.fileno())
umask = os.umask(0)
os.umask(umask)
os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
os.replace(tmp, merged)
errors = sum(1 for ok, _ in best.values() if not ok)
warn(f"{len(best)} inputs ({len(best) - errors} labelled, {errors} errors) from {len(parts)} "
     f"file(s), {dups} duplicate record(s) dropped -> {merged}")
PY
