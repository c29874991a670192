"""Funnel's Spark driver: `funnel report --engine spark` submits it with spark-submit.

Spark reads the events with its own readers, routes them by a hash of `user_id` into partitions,
orders each partition by user and input position, and pipes every partition through the Funnel
binary shipped with `spark-submit --files` (`funnel summarize --events - --part --out FILE`), as in
Hadoop streaming. The counting rules run only there; this file moves bytes. The summaries come back
to the driver, which writes them to --out-dir for `funnel report` to merge, with the quarantined
lines (each named by its file and line, or record for CSV and Parquet) and the job's statistics.

Input order. DESIGN.md's rules that look at input order (the first of two events with one event_id
is kept; ties in time go to the earlier line) see each user's events in the order of the input: the
position of a line is (the --events argument, the file's path, the start of the file split Spark
read it from, the line's place within that split), and a partition is sorted by user and then by
that position. Time order is Funnel's own business.

Formats:
  jsonl    Spark's text reader; each line goes to Funnel as its raw bytes, so every line Funnel
           would quarantine is quarantined with Funnel's reason.
  csv      Spark's CSV reader (RFC 4180: quotes doubled, a quoted cell may span lines), every column
           read as a string and written back as CSV for Funnel; the files read together must have
           the same header. A record Spark cannot parse (a wrong number of cells, an unclosed quote)
           goes to Funnel verbatim, alone, and Funnel quarantines it with its reason.
  parquet  Spark's Parquet reader, the columns of the CSV layout (DESIGN.md section 2); typed
           columns are written as text (timestamps as RFC 3339 in UTC, nested values as JSON) and
           Funnel reads the rows as CSV.

Usage (funnel report writes the arguments):
  spark-submit --files /path/to/funnel[,funnel.yaml] funnel_spark.py --events PATH ... \
      --input-format jsonl --partitions 8 --binary funnel [--config funnel.yaml] --out-dir DIR \
      [--quarantine FILE] [--memory 1G]
"""

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from pyspark import SparkFiles
from pyspark.sql import SparkSession, functions as F
from pyspark.sql.types import BinaryType, StringType, StructField, StructType

BOM = "\ufeff"
ORIGIN = ["o_arg", "o_file", "o_block", "o_row"]
OUT_SCHEMA = StructType([
    StructField("kind", StringType()),       # summary | quarantine
    StructField("partition", StringType()),
    StructField("data", BinaryType()),
])


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Funnel's Spark driver (run by funnel report --engine spark)")
    ap.add_argument("--events", action="append", required=True)
    ap.add_argument("--input-format", choices=["auto", "jsonl", "csv", "parquet"], default="auto")
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--binary", required=True, help="file name of the Funnel binary shipped with --files")
    ap.add_argument("--config", help="file name of funnel.yaml shipped with --files")
    ap.add_argument("--memory", default="1G", help="each task's funnel summarize --memory")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--quarantine")
    return ap.parse_args(argv)


def fail(message):
    print(f"funnel spark driver: {message}", file=sys.stderr)
    sys.exit(2)


def detect_format(path):
    """The format of one --events argument for --input-format auto: by its (or its first file's) name."""
    name = path
    local = path[len("file:"):] if path.startswith("file:") else path
    if "://" not in path and os.path.isdir(local):
        files = sorted(f for f in os.listdir(local) if not f.startswith((".", "_")))
        if not files:
            fail(f"--events {path}: the directory holds no files")
        name = files[0]
    name = name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    fail(f"--events {path}: cannot tell the format from the name; pass --input-format jsonl, csv or parquet")


def with_origin(df, arg_index):
    return (df.withColumn("o_arg", F.lit(arg_index))
              .withColumn("o_file", F.col("_metadata.file_path"))
              .withColumn("o_block", F.col("_metadata.file_block_start"))
              .withColumn("o_row", F.monotonically_increasing_id()))


def routing_key(user, raw):
    """The partition key: the user id, or for a record without a usable one (Funnel quarantines
    it wherever it lands) a hash of the record itself, so such records spread."""
    return F.coalesce(F.when(user != "", user), F.concat(F.lit("\u0000"), F.xxhash64(raw).cast("string"))).alias("k")


def read_jsonl(spark, path, i):
    df = with_origin(spark.read.option("lineSep", "\n").text(path), i)
    # A byte-order mark opens a file; Funnel accepts it there. Spark keeps it on the first line.
    value = F.when((F.col("o_block") == 0) & F.col("value").startswith(BOM), F.expr("substring(value, 2)")).otherwise(F.col("value"))
    df = df.withColumn("value", value)
    # Spark's JSON parser, like Funnel's, takes the last of repeated keys (get_json_object takes
    # the first, which would route such a line by another user than the one Funnel counts it for).
    user = F.from_json(F.col("value"), StructType([StructField("user_id", StringType())])).getField("user_id")
    return df.select(routing_key(user, F.col("value")), *ORIGIN,
                     F.col("value").cast("binary").alias("line"))


def text_column(field):
    """A Parquet column as the text of a CSV cell (DESIGN.md section 2)."""
    c = F.col(f"`{field.name}`")
    t = field.dataType.typeName()
    if t in ("string",):
        return c
    if t in ("timestamp", "timestamp_ntz"):
        return F.date_format(c, "yyyy-MM-dd'T'HH:mm:ss.SSSXXX")
    if t in ("array", "map", "struct"):
        return F.to_json(c)
    if t == "binary":
        return F.decode(c, "UTF-8")
    return c.cast("string")


def cell_name(j):
    """The name the j-th column goes by inside the job (header names such as context.device are
    not all usable as Spark column names)."""
    return f"c{j}"


def read_csv(spark, path, i):
    header = spark.read.option("header", True).option("multiLine", True).option("escape", '"').csv(path).columns
    schema = StructType([StructField(c, StringType()) for c in header] + [StructField("_corrupt_record", StringType())])
    df = (spark.read.schema(schema).option("header", True).option("multiLine", True).option("escape", '"')
          .option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", "_corrupt_record")
          .option("enforceSchema", False).csv(path))
    df = with_origin(df, i)
    user = F.when(F.col("_corrupt_record").isNull(), F.col("`user_id`")) if "user_id" in header else F.lit(None)
    key = routing_key(user, F.coalesce(F.col("_corrupt_record"), F.lit("")))
    return header, df.select(key, *ORIGIN, *[F.col(f"`{c}`").alias(cell_name(j)) for j, c in enumerate(header)],
                             F.col("_corrupt_record"))


def read_parquet(spark, path, i):
    df = with_origin(spark.read.parquet(path), i)
    fields = [f for f in df.schema.fields if f.name not in ORIGIN]
    header = [f.name for f in fields]
    user = F.col("`user_id`").cast("string") if "user_id" in header else F.lit(None)
    cells = [text_column(f).alias(cell_name(j)) for j, f in enumerate(fields)]
    key = routing_key(user, F.to_json(F.struct(*[F.col(f"`{n}`") for n in header])))
    return header, df.select(key, *ORIGIN, *cells, F.lit(None).cast("string").alias("_corrupt_record"))


def make_task(fmt, header, binary_name, config_name, memory):
    """The function each task runs over its partition's Arrow batches."""

    def summarize(stream_bytes, input_format, workdir, name):
        """Runs funnel summarize on one stream; returns (summary bytes, quarantine rows)."""
        out = os.path.join(workdir, f"{name}.summary")
        quarantine = os.path.join(workdir, f"{name}.quarantine.jsonl")
        cmd = [SparkFiles.get(binary_name), "summarize", "--events", "-", "--input-format", input_format,
               "--part", "--out", out, "--quarantine", quarantine, "--memory", memory, "--temp-dir", workdir]
        if config_name:
            cmd += ["--config", SparkFiles.get(config_name)]
        with open(os.path.join(workdir, f"{name}.stderr"), "w+b") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
            try:
                for chunk in stream_bytes:
                    proc.stdin.write(chunk)
                proc.stdin.close()
            except BrokenPipeError:
                pass
            rc = proc.wait()
            err.seek(0)
            message = err.read().decode("utf-8", "replace").strip()
        if rc != 0:
            raise RuntimeError(f"funnel summarize exited with {rc}: {message}")
        with open(out, "rb") as f:
            summary = f.read()
        rows = []
        if os.path.exists(quarantine):
            with open(quarantine, "rb") as f:
                rows = [json.loads(line) for line in f if line.strip()]
        return summary, rows

    def task(batches):
        import bisect
        import pyarrow as pa
        import pyarrow.compute as pc
        from pyspark import TaskContext
        ctx = TaskContext.get()
        part = f"{ctx.partitionId():05d}" if ctx else "00000"
        workdir = tempfile.mkdtemp(prefix="funnel-spark-")
        # Where each piped record came from, kept as the batches' Arrow columns (no Python object
        # per record): origin_batches[i] = (index of its first record, its origin columns). CSV
        # records skip Spark's corrupt rows, so they also keep (batch, row) and their first line.
        origin_batches, starts = [], []
        records = [0]
        csv_rows, first_line = [], []
        corrupt = []          # CSV records Spark could not parse: (origin, raw text)

        def origin_at(batch_no, row):
            cols = origin_batches[batch_no][1]
            return [cols[o][row].as_py() for o in ORIGIN]

        def origin_of(k):
            """The origin of the k-th record piped (0-based)."""
            if fmt == "jsonl":
                i = bisect.bisect_right(starts, k) - 1
                return origin_at(i, k - starts[i])
            return origin_at(*csv_rows[k])

        try:
            def stream():
                line = 1
                if fmt != "jsonl":
                    buf = io.StringIO()
                    csv.writer(buf, lineterminator="\n").writerow(header)
                    yield buf.getvalue().encode("utf-8")
                    line += 1
                for batch in batches:
                    n = batch.num_rows
                    if n == 0:
                        continue
                    starts.append(records[0])
                    origin_batches.append((records[0], {o: batch.column(o) for o in ORIGIN}))
                    batch_no = len(origin_batches) - 1
                    if fmt == "jsonl":
                        # The batch's lines joined by Arrow, not one Python object per line.
                        lines = batch.column("line")
                        joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, n], pa.int32()), lines), b"\n")
                        records[0] += n
                        yield joined[0].as_py() + b"\n"
                        continue
                    cells = [batch.column(cell_name(j)).to_pylist() for j in range(len(header))]
                    bad = batch.column("_corrupt_record").to_pylist()
                    buf = io.StringIO()
                    w = csv.writer(buf, lineterminator="\n")
                    for r in range(n):
                        if bad[r] is not None:
                            corrupt.append((origin_at(batch_no, r), bad[r]))
                            continue
                        row = ["" if c[r] is None else c[r] for c in cells]
                        w.writerow(row)
                        csv_rows.append((batch_no, r))
                        first_line.append(line)
                        records[0] += 1
                        line += 1 + sum(v.count("\n") for v in row)
                    yield buf.getvalue().encode("utf-8")

            results = []
            piped = stream()
            first = next(piped, None)
            if first is not None:  # an empty JSON Lines partition pipes nothing
                def chain():
                    yield first
                    yield from piped
                summary, rows = summarize(chain(), "jsonl" if fmt == "jsonl" else "csv", workdir, "part")
                if records[0]:  # a CSV partition with no record piped only its header
                    results.append(("summary", part, summary))
                line_to_record = None if fmt == "jsonl" else {l: k for k, l in enumerate(first_line)}
                for row in rows:
                    k = row["line"] - 1 if fmt == "jsonl" else line_to_record.get(row["line"])
                    if k is None or not (0 <= k < records[0]):
                        raise RuntimeError(f"funnel summarize quarantined stream line {row['line']}, which no piped record starts")
                    row["_origin"] = origin_of(k)
                    results.append(("quarantine", part, json.dumps(row).encode("utf-8")))
            for j, (origin, raw) in enumerate(corrupt):
                buf = io.StringIO()
                csv.writer(buf, lineterminator="\n").writerow(header)
                text = buf.getvalue() + raw + ("" if raw.endswith("\n") else "\n")
                summary, rows = summarize([text.encode("utf-8")], "csv", workdir, f"corrupt{j}")
                results.append(("summary", f"{part}-c{j:05d}", summary))
                for row in rows:
                    row["_origin"] = origin
                    results.append(("quarantine", part, json.dumps(row).encode("utf-8")))
            if results:
                yield pa.RecordBatch.from_pylist([{"kind": k, "partition": p, "data": d} for k, p, d in results],
                                                 schema=pa.schema([("kind", pa.string()), ("partition", pa.string()), ("data", pa.binary())]))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    return task


def locate_lines(spark, frames, rows):
    """Line (JSON Lines) or record (CSV, Parquet) numbers of the quarantined rows: a row's number
    within its file is the rows of the file's earlier splits plus its place within its split."""
    wanted = {r["_origin"][0] for r in rows}
    blocks = {}
    for i, df in enumerate(frames):
        if i not in wanted:
            continue
        for b in df.groupBy("o_file", "o_block").agg(F.count(F.lit(1)).alias("n"), F.min("o_row").alias("first")).collect():
            blocks.setdefault((i, b["o_file"]), []).append((b["o_block"], b["n"], b["first"]))
    for r in rows:
        arg, path, block, row = r["_origin"]
        before, first = 0, None
        for start, n, lo in sorted(blocks.get((arg, path), [])):
            if start < block:
                before += n
            elif start == block:
                first = lo
        r["_number"] = before + (row - first) + 1 if first is not None else None


def spark_stats(spark):
    """Tasks (failed), bytes shuffled, executors (lost) and each stage's seconds, from the driver's own monitoring API."""
    sc = spark.sparkContext
    url = sc.uiWebUrl
    if not url:
        return {}
    try:
        with urllib.request.urlopen(f"{url}/api/v1/applications/{sc.applicationId}/stages", timeout=10) as f:
            stages = json.load(f)
        with urllib.request.urlopen(f"{url}/api/v1/applications/{sc.applicationId}/allexecutors", timeout=10) as f:
            executors = json.load(f)
    except Exception as e:  # the statistics are informative; the report does not depend on them
        return {"stats_error": str(e)}
    def seconds(stage):
        start, end = stage.get("firstTaskLaunchedTime") or stage.get("submissionTime"), stage.get("completionTime")
        if not start or not end:
            return None
        parse = lambda t: time.mktime(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) + float("0." + t[20:23])
        return round(parse(end) - parse(start), 2)
    return {
        "stage_seconds": [{"stage": s["stageId"], "tasks": s.get("numTasks"), "seconds": seconds(s)}
                          for s in sorted(stages, key=lambda s: (s["stageId"], s.get("attemptId", 0)))],
        "tasks": sum(s.get("numCompleteTasks", 0) for s in stages),
        "failed_tasks": sum(s.get("numFailedTasks", 0) for s in stages),
        "shuffle_write_bytes": sum(s.get("shuffleWriteBytes", 0) for s in stages),
        "executors": len([e for e in executors if e.get("id") != "driver"]),
        "executors_removed": len([e for e in executors if e.get("id") != "driver" and not e.get("isActive", True)]),
    }


def main(argv):
    args = parse_args(argv)
    t0 = time.time()
    spark = (SparkSession.builder.appName("funnel report")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.execution.arrow.maxRecordsPerBatch", "20000")
             .config("spark.sql.debug.maxToStringFields", "1000")
             .getOrCreate())
    spark.sparkContext.setLogLevel("WARN")
    formats = [args.input_format if args.input_format != "auto" else detect_format(p) for p in args.events]
    if len(set(formats)) != 1:
        fail(f"--events: the inputs mix formats ({', '.join(sorted(set(formats)))}); report one format at a time")
    fmt = formats[0]

    frames, header = [], None
    for i, path in enumerate(args.events):
        if fmt == "jsonl":
            frames.append(read_jsonl(spark, path, i))
            continue
        h, df = (read_csv if fmt == "csv" else read_parquet)(spark, path, i)
        if header is None:
            header = h
        elif sorted(h) != sorted(header):
            fail(f"--events {path}: its columns ({', '.join(h)}) differ from the first input's ({', '.join(header)})")
        # The first input's column order, whatever this one's.
        frames.append(df.select("k", *ORIGIN, *[F.col(cell_name(h.index(c))).alias(cell_name(j)) for j, c in enumerate(header)],
                                "_corrupt_record"))
    df = frames[0]
    for other in frames[1:]:
        df = df.unionByName(other)

    ordered = df.repartition(args.partitions, "k").sortWithinPartitions("k", *ORIGIN)
    task = make_task(fmt, header, args.binary, args.config, args.memory)
    rows = ordered.mapInArrow(task, OUT_SCHEMA).collect()

    os.makedirs(args.out_dir, exist_ok=True)
    quarantined = []
    for r in rows:
        if r["kind"] == "summary":
            with open(os.path.join(args.out_dir, f"part-{r['partition']}.summary"), "wb") as f:
                f.write(r["data"])
        else:
            quarantined.append(json.loads(r["data"]))
    if args.quarantine is not None:
        if quarantined:
            locate_lines(spark, frames, quarantined)
        quarantined.sort(key=lambda q: (q["_origin"][0], q["_origin"][1], q["_number"] or 0))
        with open(args.quarantine + ".partial", "w", encoding="utf-8") as f:
            for q in quarantined:
                path = q["_origin"][1]
                q["file"] = path[len("file:"):] if path.startswith("file:") else path
                if fmt == "jsonl":
                    q["line"] = q["_number"]
                else:
                    q["line"] = None
                    q["record" if fmt == "csv" else "row"] = q["_number"]
                del q["_origin"], q["_number"]
                f.write(json.dumps(q, ensure_ascii=False, separators=(",", ":")) + "\n")
        os.replace(args.quarantine + ".partial", args.quarantine)
    stats = spark_stats(spark)
    stats.update({"quarantined": len(quarantined), "partitions": args.partitions, "seconds": round(time.time() - t0, 3)})
    with open(os.path.join(args.out_dir, "stats.json"), "w") as f:
        json.dump(stats, f)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
