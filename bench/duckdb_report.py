"""Run report.sql with DuckDB: python duckdb_report.py EVENTS.jsonl OUT_DIR [THREADS]

The DuckDB side of run_report_bench.sh. Writes variants.json, positions.json, per_user.parquet
and data_quality.json into OUT_DIR (created if missing) and prints the per-variant rows.
"""
import pathlib
import sys

import duckdb


def main() -> None:
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__.strip().splitlines()[0])
    events, out = pathlib.Path(sys.argv[1]).resolve(), pathlib.Path(sys.argv[2]).resolve()
    threads = int(sys.argv[3]) if len(sys.argv) == 4 else 2
    if not events.is_file():
        sys.exit(f"duckdb_report: no such events file: {events}")
    out.mkdir(parents=True, exist_ok=True)

    def quote(p: pathlib.Path) -> str:  # inside a SQL string literal
        return str(p).replace("'", "''")

    sql = (pathlib.Path(__file__).with_name("report.sql").read_text()
           .replace("${EVENTS}", quote(events)).replace("${OUT}", quote(out)))
    con = duckdb.connect()  # in-memory
    con.execute(f"SET threads = {threads}")
    con.execute(sql)
    for row in con.execute(f"SELECT * FROM read_json('{quote(out)}/variants.json')").fetchall():
        print(*row, sep="\t")


if __name__ == "__main__":
    main()
