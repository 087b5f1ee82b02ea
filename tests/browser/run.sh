#!/bin/sh
# The browser chat's test in Debian's Chromium (tests/browser/chat.test.mjs).
#   tests/browser/run.sh <switchboard binary> <chat dir> <output dir>
# <chat dir> is the assembled page (the build puts it in
# <build>/share/switchboard/chat; tests/browser/assemble-chat.sh makes one
# without a build). Screenshots go to <output dir>. Installs playwright-core
# from package-lock.json when node_modules is missing or older than the lock
# file (it never downloads a browser: /usr/bin/chromium is used).
set -eu
if [ $# -ne 3 ]; then
  echo "usage: $0 <switchboard binary> <chat dir> <output dir>" >&2
  exit 2
fi
abs() {
  case $1 in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$(pwd)" "$1" ;;
  esac
}
bin=$(abs "$1")
chat=$(abs "$2")
out=$(abs "$3")
if [ ! -x "$bin" ]; then
  echo "$0: $bin is not an executable" >&2
  exit 2
fi
if [ ! -f "$chat/index.html" ] || [ ! -f "$chat/client/index.js" ]; then
  echo "$0: $chat is not an assembled chat (index.html, client/index.js): build the default target, or run tests/browser/assemble-chat.sh" >&2
  exit 2
fi
for tool in node npm openssl /usr/bin/chromium; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$0: $tool is needed (Node 20, Debian's chromium, openssl)" >&2
    exit 1
  fi
done
cd "$(dirname "$0")"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
  touch node_modules
fi
mkdir -p "$out"
exec node chat.test.mjs "$bin" "$chat" "$out"
