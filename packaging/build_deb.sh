#!/usr/bin/env bash
# Wrap dist/zhiku (the PyInstaller onedir) into a .deb: /opt/zhiku, a `zhiku` launcher on PATH,
# a desktop entry with icon and the document types it opens. Usage: build_deb.sh VERSION OUT.deb
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$1
OUT=$2
ROOT=$(mktemp -d)
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT/DEBIAN" "$ROOT/opt" "$ROOT/usr/bin" "$ROOT/usr/share/applications" \
         "$ROOT/usr/share/icons/hicolor/scalable/apps"
cp -a dist/zhiku "$ROOT/opt/zhiku"
cat > "$ROOT/usr/bin/zhiku" <<'SH'
#!/bin/sh
exec /opt/zhiku/zhiku "$@"
SH
chmod 755 "$ROOT/usr/bin/zhiku"
install -m 644 packaging/zhiku.desktop "$ROOT/usr/share/applications/zhiku.desktop"
install -m 644 packaging/zhiku.svg "$ROOT/usr/share/icons/hicolor/scalable/apps/zhiku.svg"
SIZE=$(du -sk "$ROOT" | cut -f1)
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: zhiku
Version: $VERSION
Section: utils
Priority: optional
Architecture: amd64
Installed-Size: $SIZE
Depends: libxcb-icccm4, libxcb-keysyms1, libxcb-cursor0, libxcb-image0, libxcb-render-util0, libxcb-shape0, libxcb-xkb1, libxkbcommon-x11-0, libxkbcommon0, libfontconfig1, libfreetype6, libegl1, libgl1, libdbus-1-3, libglib2.0-0
Maintainer: Zhiku developers <zhiku@localhost>
Description: Zhiku (知库): a private, offline knowledge base you chat with
 Drop in PDFs, Word, slides, web pages, notes and images; ask questions in Chinese or
 English; answers cite file and page. Models run on this computer; nothing leaves it.
 The default models are installed from a models bundle on first start.
CONTROL
cat > "$ROOT/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
command -v update-desktop-database >/dev/null && update-desktop-database -q /usr/share/applications || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q /usr/share/icons/hicolor || true
SH
cp "$ROOT/DEBIAN/postinst" "$ROOT/DEBIAN/postrm"
chmod 755 "$ROOT/DEBIAN/postinst" "$ROOT/DEBIAN/postrm"
dpkg-deb --root-owner-group --build "$ROOT" "$OUT" >/dev/null
echo "$OUT"
