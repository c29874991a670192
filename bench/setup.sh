#!/usr/bin/env bash
# Creates bench/.venv with the pinned peers (requirements.txt) and makes sure
# /usr/bin/time (GNU time, for -v peak RSS) exists. Safe to run again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [ ! -x /usr/bin/time ]; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq time
fi

[ -x "$here/.venv/bin/python" ] || python3 -m venv "$here/.venv"
"$here/.venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
"$here/.venv/bin/python" -c 'import duckdb; print("duckdb", duckdb.__version__)'
