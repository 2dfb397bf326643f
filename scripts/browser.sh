#!/usr/bin/env bash
# The console tests drive Debian's chromium (Playwright's own browser download cannot work here). Install it when
# missing and we may (root, apt); otherwise say so, and the tests skip (or fail under CI=true).
set -u
command -v chromium >/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium for the console tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null; }
fi
command -v chromium >/dev/null || echo "chromium is not installed: the console tests will skip (or fail under CI=true)"
exit 0
