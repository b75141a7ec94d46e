#!/usr/bin/env bash
# Start the real app under Xvfb with a demo knowledge base and save PNGs of its main screens.
# Needs Debian's xvfb and the libraries Qt's xcb plugin loads (installed here if missing, as root),
# and a CJK font so the Chinese UI is legible.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-screenshots}
need=(xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-render-util0
      libxcb-shape0 libxkbcommon-x11-0 fonts-noto-cjk)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "missing Debian packages: ${missing[*]} (apt-get install them, then re-run)" >&2
    exit 1
  fi
fi
# a throwaway data folder, the real models
export ZHIKU_MODELS="${ZHIKU_MODELS:-$(.venv/bin/python -c 'from models.paths import models_dir; print(models_dir())')}"
export ZHIKU_HOME="$(mktemp -d)"
export QT_QPA_PLATFORM=xcb
xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py "$OUT"
rm -rf "$ZHIKU_HOME"
