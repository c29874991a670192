"""Writes a Funnel CSV event log (DESIGN.md section 2's layout) as Parquet, with Spark.

    .venv-spark/bin/python tools/spark/csv_to_parquet.py EVENTS.csv OUT_DIR [--files N]

Every column is read as text; a column whose every non-empty cell survives a round trip through
a number or a boolean type (position, quantity and viewable_ms as long; price, propensity and
viewable_fraction as double; bot as boolean) is written with that type, the others (ts, whose
cells mix RFC 3339 strings and epoch milliseconds, ids, items) as strings. The rows keep the CSV's
order: the file is read in splits and each split is written as its own part file, so part-00000,
part-00001, … hold the rows in order (N part files at most, default 3).
"""
import argparse
import os

from pyspark.sql import SparkSession, functions as F
from pyspark.sql.types import StringType, StructField, StructType

TYPED = {"position": "long", "quantity": "long", "viewable_ms": "long",
         "price": "double", "propensity": "double", "viewable_fraction": "double", "bot": "boolean"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("out")
    ap.add_argument("--files", type=int, default=3)
    args = ap.parse_args()
    spark = (SparkSession.builder.master("local[2]").appName("csv to parquet")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.files.maxPartitionBytes", max(1 << 16, os.path.getsize(args.csv) // args.files + 1))
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    header = spark.read.option("header", True).option("escape", '"').csv(args.csv).columns
    schema = StructType([StructField(c, StringType()) for c in header])
    df = spark.read.schema(schema).option("header", True).option("escape", '"').option("multiLine", False).csv(args.csv)
    cells = []
    for c in header:
        col = F.col(f"`{c}`")
        kind = TYPED.get(c)
        if kind:
            typed = col.try_cast(kind)
            back = typed.cast("string")
            lost = df.filter(col.isNotNull() & (typed.isNull() | (back != col))).limit(1).count()
            if lost == 0:
                cells.append(typed.alias(c))
                continue
        cells.append(col.alias(c))
    df.select(*cells).write.mode("overwrite").parquet(args.out)
    typed = [f"{f.name}:{f.dataType.simpleString()}" for f in spark.read.parquet(args.out).schema.fields if f.dataType.simpleString() != "string"]
    print(f"wrote {args.out} ({', '.join(typed) or 'all strings'})")
    spark.stop()


if __name__ == "__main__":
    main()
