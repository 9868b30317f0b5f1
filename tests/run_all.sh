#!/usr/bin/env bash
# The whole test suite, set-up included: installs what the tests need into ./.venv (and Debian's
# chromium for the browser tests when it is missing), then runs the linters, the type check, the
# front-end unit tests, the browser tests and the Python tests. Any failure stops it non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

if ! command -v node >/dev/null; then
  echo "Node.js 20 (or newer) is needed to build the JupyterLab extension: https://nodejs.org" >&2
  exit 1
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing Debian's chromium for the browser tests"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

echo "== installing ei-widgets and its test dependencies into .venv"
[ -x .venv/bin/python ] || python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[test]"
jupyter-builder develop --overwrite . >/dev/null

echo "== linters and type check"
ruff check .
ruff format --check .
mypy

echo "== front-end unit tests"
(cd labextension && jlpm install --immutable >/dev/null && jlpm run lint:check && jlpm run test)

echo "== browser tests"
bash labextension/ui-tests/run.sh

echo "== Python tests"
python -m pytest
