#!/usr/bin/env bash
# Renders Funnel's HTML report of Hillstrom's experiment and of the simulator's scenarios in headless
# Chromium, keeps a screenshot of each, and checks each page's DOM (tools/checks/check_html_dom.py), and does the same
# for the daily path. Usage: scripts/check-html-report.sh [FUNNEL_BINARY] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
funnel=${1:-.build/release/funnel}
out=${2:-$(mktemp -d)}
mkdir -p "$out"
out=$(cd "$out" && pwd)   # Chromium opens file:// URLs, which need an absolute path

if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

shared=${FUNNEL_SHARED_DATA:-$(cd .. && pwd)/shared/data}
hillstrom="$shared/hillstrom/hillstrom.csv"
[ -f "$hillstrom" ] || { echo "check-html-report: $hillstrom is missing (set FUNNEL_SHARED_DATA to the shared data folder)" >&2; exit 1; }

# Renders one report in Chromium: a screenshot of the whole page, and the DOM Chromium parsed,
# which check_html_dom.py reads.
render() {
  local name=$1; shift
  "$funnel" report "$@" --format html --output "$out/$name.html"
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,2600 \
    --screenshot="$out/$name.png" "file://$out/$name.html" >/dev/null 2>&1
  chromium --headless --no-sandbox --disable-gpu --dump-dom "file://$out/$name.html" 2>/dev/null > "$out/$name.dom.html"
  [ -s "$out/$name.png" ] && [ "$(stat -c %s "$out/$name.png")" -gt 50000 ] || { echo "$name: the screenshot looks blank" >&2; exit 1; }
}

# Hillstrom's e-mail experiment: one position, one item per arm, no add-to-cart events.
python3 tools/examples/hillstrom_events.py "$hillstrom" > "$out/hillstrom.jsonl"
render hillstrom --events "$out/hillstrom.jsonl"
# The counts behind the page against the author's published results (data README): visit rate,
# conversion rate and spend per customer of each arm.
"$funnel" report --events "$out/hillstrom.jsonl" --format json --output "$out/hillstrom.json"
python3 - "$out/hillstrom.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
published = {"mens": (0.1828, 0.0125, 1.42), "womens": (0.1514, 0.0088, 1.08), "control": (0.1062, 0.0057, 0.65)}
for arm, (visit, conversion, spend) in published.items():
    m = d["variants"][arm]["metrics"]
    got = (m["ctr"]["value"], m["user_conversion_rate"]["value"], m["revenue_per_user"]["value"])
    assert abs(got[0] - visit) < 5e-5 and abs(got[1] - conversion) < 5e-5 and abs(got[2] - spend) < 5e-3, (arm, got)
assert d["variants"]["mens"]["carts"] == 0 and list(d["positions"]["mens"]) == ["1"]
print("hillstrom: visit, conversion and spend per arm equal the published results: ok")
PY
python3 tools/checks/check_html_dom.py hillstrom "$out/hillstrom.dom.html" \
  --expect-drawn funnel-ctr funnel-post_click_cvr funnel-ctcvr forest \
  --expect-empty funnel-cart_rate positions cohorts-mens cohorts-womens

# Printing: the collapsed segment tables print open. The printed page has more pages than the same
# page printed without its collapsible tables.
python3 -c "import re,sys; s=open(sys.argv[1]).read(); open(sys.argv[2],'w').write(re.sub(r'<details.*?</details>', '', s, flags=re.S))" \
  "$out/hillstrom.html" "$out/hillstrom-no-details.html"
for page in hillstrom hillstrom-no-details; do
  chromium --headless --no-sandbox --disable-gpu --no-pdf-header-footer --print-to-pdf="$out/$page.pdf" "file://$out/$page.html" >/dev/null 2>&1
done
python3 - "$out/hillstrom.pdf" "$out/hillstrom-no-details.pdf" <<'PY'
import re, sys
pages = [len(re.findall(rb"/Type\s*/Page[^s]", open(p, "rb").read())) for p in sys.argv[1:]]
assert pages[0] > pages[1] >= 2, f"printed pages with / without the segment tables: {pages}"
print(f"hillstrom: prints on {pages[0]} pages with the segment tables open ({pages[1]} without them): ok")
PY

# The simulator's scenarios: the clickbait test (every chart drawn), the A/A test, and the
# clickbait test with always-valid intervals.
"$funnel" simulate --scenario clickbait --users 8000 --seed 11 --out "$out/events.jsonl" 2>/dev/null
render clickbait --events "$out/events.jsonl"
python3 tools/checks/check_html_dom.py clickbait "$out/clickbait.dom.html" \
  --expect-drawn funnel-ctr funnel-cart_rate funnel-post_click_cvr funnel-ctcvr forest positions cohorts
"$funnel" simulate --scenario aa --users 6000 --seed 12 --out "$out/aa.jsonl" 2>/dev/null
render aa --events "$out/aa.jsonl"
python3 tools/checks/check_html_dom.py aa "$out/aa.dom.html" --expect-drawn forest positions
render clickbait-msprt --events "$out/events.jsonl" --sequential msprt
python3 tools/checks/check_html_dom.py clickbait-msprt "$out/clickbait-msprt.dom.html" --expect-drawn forest
echo "screenshots: $out/hillstrom.png $out/clickbait.png"

# The daily path (funnel report --daily --format html): rendered in Chromium, its chart with marks
# for every day, both interval bands and at least three ticks on the lift axis.
"$funnel" report --events "$out/events.jsonl" --daily --sequential msprt --format html --output "$out/daily.html"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,1400 \
  --screenshot="$out/daily.png" "file://$out/daily.html" >/dev/null 2>&1
python3 - "$out/daily.html" "$out/daily.png" <<'PY'
import os, re, sys
html = open(sys.argv[1], encoding="utf-8").read()
assert "https://" not in html and "http://" not in html and "<script" not in html, "the page must be self-contained"
body = html.split('data-chart="daily"', 1)[1].split("</svg>", 1)[0]
days = len(re.findall(r"<tr><td>\d{4}-\d{2}-\d{2}</td>", html))
marks = body.count('<circle class="mark"')
ticks = body.count('<text class="tick"')
assert days >= 7 and marks == days, f"{marks} marks for {days} days"
assert 'class="band always-valid"' in body and 'class="band fixed"' in body, "interval bands missing"
assert ticks >= 3, f"{ticks} ticks on the lift axis"
assert os.path.getsize(sys.argv[2]) > 20000, "the screenshot of the daily page looks blank"
print(f"daily path: {days} days, {marks} marks, {ticks} ticks: ok")
PY
echo "screenshot: $out/daily.png"
