#!/usr/bin/env bash
# Regenerates docs/report.png, the README's picture of the toy run's report.
#
#   tools/report_screenshot.sh [HHI] [STORE]
#
# HHI defaults to target/release/hhi, STORE to ./artifacts; run `hhi run
# pipelines/full.toml` first. Needs Chromium (Debian: `apt install chromium`); Pillow, when
# Python has it, shrinks the PNG to a 256-colour palette.
set -euo pipefail
cd "$(dirname "$0")/.."
hhi=${1:-target/release/hhi}
store=${2:-artifacts}
browser=${HHI_CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
[ -n "$browser" ] || { echo "no Chromium found: install it (Debian: apt install chromium) or set HHI_CHROMIUM" >&2; exit 1; }
page="$("$hhi" --store "$store" path --pipeline pipelines/full.toml report.report)/index.html"
[ -f "$page" ] || { echo "no report at $page: run \`hhi run pipelines/full.toml\` first" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
  --user-data-dir="$profile" --window-size=1280,1500 --virtual-time-budget=8000 \
  --screenshot="$PWD/docs/report.png" "file://$page" 2>/dev/null
python3 - docs/report.png <<'PY' || true
import sys
from PIL import Image
p = sys.argv[1]
Image.open(p).convert("RGB").quantize(256).save(p, optimize=True)
PY
ls -l docs/report.png
