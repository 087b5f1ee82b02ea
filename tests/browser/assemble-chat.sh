#!/bin/sh
# Assembles the browser chat the way clients/chat/CMakeLists.txt does, for
# runs without a build: the page's files, and the JavaScript client under
# client/ (client/index.js, client/src/*.js).
#   tests/browser/assemble-chat.sh <output dir>
set -eu
if [ $# -ne 1 ]; then
  echo "usage: $0 <output dir>" >&2
  exit 2
fi
src="$(cd "$(dirname "$0")/../.." && pwd)/clients"
rm -rf "$1"
mkdir -p "$1/client/src"
for f in "$src"/chat/*.html "$src"/chat/*.js "$src"/chat/*.css "$src"/chat/*.svg; do
  [ -f "$f" ] && cp "$f" "$1/"
done
cp "$src/js/index.js" "$1/client/"
cp "$src"/js/src/*.js "$1/client/src/"
