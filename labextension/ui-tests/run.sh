#!/usr/bin/env bash
# Browser tests of the JupyterLab extension: builds the front end, installs the
# test dependencies, then lets Playwright start JupyterLab (on a free port, in
# a temporary folder) and drive Debian's chromium. Exits non-zero on failure.
#
# Needs on PATH: jupyter (with jupyterlab >= 4.6) and jlpm, as in the project's
# Python environment; /usr/bin/chromium (apt-get install chromium) or
# EI_CHROMIUM pointing at another Chromium. Extra arguments go to
# `playwright test`.
#
# Screenshots stay in test-results/ (ignored by git). With
# --update-docs-images, copies each screenshot named like an image in
# docs/images/ (picker.png, dashboard.png, ...) over that image.
set -euo pipefail

UPDATE_DOCS_IMAGES=0
ARGS=()
for arg in "$@"; do
  if [ "$arg" = "--update-docs-images" ]; then
    UPDATE_DOCS_IMAGES=1
  else
    ARGS+=("$arg")
  fi
done

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXT="$(dirname "$HERE")"
ROOT="$(dirname "$EXT")"

for tool in jupyter jlpm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "run.sh: '$tool' is not on PATH; activate the Python environment that has jupyterlab" >&2
    exit 2
  fi
done
CHROMIUM="${EI_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  echo "run.sh: $CHROMIUM not found; install it with: apt-get install -y chromium" >&2
  exit 2
fi
export EI_CHROMIUM="$CHROMIUM"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

# 1. The front end, built from the current source.
(cd "$EXT" && jlpm install && jlpm build:prod)

# 2. The test dependencies.
(cd "$HERE" && jlpm install)

# 3. A private folder (outside the source tree) for the server, the kernels
#    and the browser, and the built extension under its package name where
#    the server looks for it.
WORK="$(python3 -c 'import tempfile; print(tempfile.mkdtemp(prefix="ei-widgets-ui-tests-"))')"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/labextensions" "$WORK/tmp" "$WORK/root"
ln -s "$ROOT/ei_widgets/labextension" "$WORK/labextensions/ei-widgets"
export EI_UI_LABEXTENSIONS="$WORK/labextensions"
export JUPYTERLAB_GALATA_ROOT_DIR="$WORK/root"
export TMPDIR="$WORK/tmp"
# The kernel imports ei_widgets from this source tree.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# 4. A free port (Galata's default 8888 would collide with a running server).
EI_UI_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
export EI_UI_PORT

cd "$HERE"
jlpm playwright test ${ARGS[@]+"${ARGS[@]}"}
[ "$UPDATE_DOCS_IMAGES" -eq 1 ] || exit 0

# 5. The README's images, from the screenshots the tests saved in their own
#    output folders (test-results/ is emptied at the start of every run).
updated=0
for image in "$ROOT"/docs/images/*.png; do
  shot="$(find test-results -name "$(basename "$image")" -print -quit)"
  [ -n "$shot" ] || continue
  cp "$shot" "$image"
  echo "updated ${image#"$ROOT"/} from $shot"
  updated=$((updated + 1))
done
if [ "$updated" -eq 0 ]; then
  echo "run.sh: no screenshot under $HERE/test-results matches an image in docs/images" >&2
  exit 1
fi
