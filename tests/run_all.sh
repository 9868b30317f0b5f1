#!/usr/bin/env bash
# The whole test suite, set-up included: installs what the tests need into ./.venv (and Debian's
# chromium for the browser tests when it is missing), then runs the linters, the type check, the
# front-end unit tests, the browser tests and the Python tests, and last checks that the suite
# left ei-widgets installed and the checkout as it found it. Any failure stops it non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

# What git sees of the checkout: status, and the content of changed and untracked files (so an
# edit to a file that was already modified counts too). Ignored files (.venv, builds) are not seen.
checkout_state() {
  git status --porcelain=v1 --untracked-files=all
  git diff HEAD --binary | sha256sum
  git ls-files -z --others --exclude-standard | xargs -0 -r sha256sum
}
in_git=0
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  in_git=1
  state_before="$(checkout_state)"
fi

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

echo "== the suite left ei-widgets installed and the checkout unchanged"
# from outside the checkout, so the import cannot come from the source tree
(cd / && env -u PYTHONPATH "$ROOT/.venv/bin/python" -c \
  'import ei_widgets; print("ei_widgets", ei_widgets.__version__, "imports from", ei_widgets.__file__)')
(cd / && env -u PYTHONPATH "$ROOT/.venv/bin/ei-widgets" --help >/dev/null)
if [ "$in_git" -eq 1 ]; then
  state_after="$(checkout_state)"
  if [ "$state_before" != "$state_after" ]; then
    echo "the test suite changed the checkout (before < > after):" >&2
    diff <(echo "$state_before") <(echo "$state_after") >&2 || true
    exit 1
  fi
  echo "git status: as before the suite"
fi
