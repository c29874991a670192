#!/usr/bin/env bash
# Opens Funnel's HTML report in headless Chromium, takes a screenshot and checks that the page
# rendered its four charts. Usage: scripts/check-html-report.sh [FUNNEL_BINARY] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
funnel=${1:-.build/release/funnel}
out=${2:-$(mktemp -d)}
mkdir -p "$out"

if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

"$funnel" simulate --scenario clickbait --users 8000 --seed 11 --out "$out/events.jsonl" 2>/dev/null
"$funnel" report --events "$out/events.jsonl" --format html --output "$out/report.html"

chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,3000 \
  --screenshot="$out/report.png" "file://$out/report.html" >/dev/null 2>&1

python3 - "$out/report.html" "$out/report.png" <<'PY'
import re, struct, sys, zlib
html = open(sys.argv[1], encoding="utf-8").read()
charts = re.findall(r'<svg class="chart" data-chart="(\w+)"', html)
need = {"funnel", "forest", "positions", "cohorts"}
assert need <= set(charts), f"charts missing from the HTML: {need - set(charts)}"
assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html, "the report must not load anything from the network"
for kind in need:
    body = html.split(f'data-chart="{kind}"', 1)[1].split("</svg>", 1)[0]
    assert body.count("<rect") + body.count("<polyline") + body.count("<circle") >= 2, f"chart {kind} has no marks"

# Decode the PNG (8-bit RGB/RGBA, no interlace) and check that it is not blank.
data = open(sys.argv[2], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, width = 8, b"", 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8]); chunk = data[pos + 8:pos + 8 + n]; pos += 12 + n
    if kind == b"IHDR": width, height, depth, ctype = struct.unpack(">IIBB", chunk[:10])
    if kind == b"IDAT": idat += chunk
raw = zlib.decompress(idat)
bpp = 4 if ctype == 6 else 3
stride = width * bpp
prev = bytearray(stride)
colours, dark = set(), 0
for y in range(height):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):   # undo the PNG row filter
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p_ = a + b - c; pa, pb, pc = abs(p_ - a), abs(p_ - b), abs(p_ - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    prev = line
    if y % 7 == 0:
        for x in range(0, stride, bpp * 5):
            px = bytes(line[x:x + 3]); colours.add(px)
            if sum(px) < 300: dark += 1
assert width >= 1000 and height >= 2000, (width, height)
assert len(colours) > 20 and dark > 200, f"screenshot looks blank ({len(colours)} colours, {dark} dark samples)"
print(f"html report: charts {sorted(set(charts))}, screenshot {width}x{height} with {len(colours)} colours: ok")
PY
echo "screenshot: $out/report.png"

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
