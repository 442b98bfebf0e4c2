#!/usr/bin/env bash
# The test command: set up, check the import contract on the package as it
# installs, then run pytest. Arguments go to pytest (e.g. -k manifest, -m "not slow").
# Exits with pytest's status; a run that collects no test fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=packaging/lib.sh
source "$ROOT/packaging/lib.sh"
cd "$ROOT"

section "setup"
bash "$ROOT/packaging/setup.sh" || die "setup failed (see above)"

tmp="$(mktemp -d -t twinview-tests.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
mkdir -m 700 "$tmp/runtime"
export XDG_RUNTIME_DIR="$tmp/runtime"
# Audit logs, history stores and alarm journals of the tests' sites go here, not into the user's state.
mkdir -p "$tmp/state" && export XDG_STATE_HOME="$tmp/state"
# Offscreen canvases, no anti-aliasing pass: fast, deterministic renders on lavapipe.
export RENDERCANVAS_FORCE_OFFSCREEN=1 WGPU_FORCE_OFFSCREEN=1 PYGFX_DEFAULT_PPAA=none
PY="$ROOT/.venv/bin/python"

# The import contracts (pyproject.toml) run on the checkout itself: viewer/ is the
# twinview package, with symlinks to connectors/, shaders/ and assets/.
section "import contracts (lint-imports)"
lint_rc=0
(cd "$ROOT" && "$ROOT/.venv/bin/lint-imports" --no-cache --no-logo) || lint_rc=$?
section "vocabulary copies (python -m twinview.twin.vocabulary)"
"$PY" -m twinview.twin.vocabulary || lint_rc=$?

section "pytest"
test_rc=0
"$ROOT/.venv/bin/pytest" -q -p no:cacheprovider --durations=10 "$@" || test_rc=$?
finish

if [ "$test_rc" -eq 5 ]; then
    echo "run-tests: FAILED: pytest collected no tests" >&2
    test_rc=1
fi
if [ "$lint_rc" -ne 0 ]; then
    echo "run-tests: FAILED: import contracts or vocabulary copies (exit $lint_rc)" >&2
    [ "$test_rc" -ne 0 ] || test_rc=1
fi
exit "$test_rc"
