#!/usr/bin/env bash
# Check twinview as a user gets it: build the wheel the way `pip install .` does,
# check it ships every module, shader, demo asset and web file, install it (not
# editable, without extras) into a fresh virtual environment and, from a folder
# outside the checkout, check the demo site and serve it with no GPU stack at
# all; then add the [desktop] extra and check the rendered PNG.
#
# Needs the Debian packages from packaging/setup.sh (lavapipe for rendering).
# Environment: PYTHON (default python3), TWINVIEW_KEEP=1 keeps the temp folder.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=packaging/lib.sh
source "$ROOT/packaging/lib.sh"
PYTHON="${PYTHON:-python3}"
SIZE=320x240

tmp="$(mktemp -d -t twinview-install.XXXXXX)"
if [ "${TWINVIEW_KEEP:-0}" = 1 ]; then
    echo "install-check: keeping $tmp"
else
    trap 'rm -rf "$tmp"' EXIT
fi
mkdir -p "$tmp/work" && mkdir -m 700 "$tmp/runtime"
export XDG_RUNTIME_DIR="$tmp/runtime" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
VPY="$tmp/venv/bin/python"
TWINVIEW="$tmp/venv/bin/twinview"

section "fresh virtual environment"
"$PYTHON" -m venv "$tmp/venv" </dev/null || die "python3 -m venv failed"
"$VPY" --version

section "build the wheel (isolated build, as pip install . does)"
wheel="$("$VPY" "$ROOT/packaging/build_wheel.py" "$tmp/dist" --isolated --check </dev/null)" \
    || die "wheel build failed or the wheel misses files of the source (see above)"
"$VPY" - "$wheel" <<'EOF' || die "wheel contents"
import sys, zipfile
names = [n for n in zipfile.ZipFile(sys.argv[1]).namelist() if not n.endswith("/")]
def count(prefix, suffix=""):
    return sum(n.startswith(prefix) and n.endswith(suffix) for n in names)
print(f"{sys.argv[1].rsplit('/', 1)[-1]}: {len(names)} files; "
      f"modules {count('twinview/', '.py')}, shaders {count('twinview/shaders/', '.wgsl')}, "
      f"demo site {count('twinview/assets/demo/')}, web static {count('twinview/web/static/')}")
for must in ("twinview/connectors/__init__.py", "twinview/twin/__init__.py", "twinview/assets/demo/site.toml"):
    if must not in names:
        sys.exit(f"missing from the wheel: {must}")
if not count("twinview/shaders/", ".wgsl"):
    sys.exit("no shader (twinview/shaders/*.wgsl) in the wheel")
EOF

section "pip install the wheel into the fresh environment (core: no extras)"
"$VPY" -m pip install -qq "$wheel" </dev/null || die "pip install $wheel"
for gpu in pygfx wgpu imgui_bundle rendercanvas; do
    if "$VPY" -c "import $gpu" 2>/dev/null; then die "the core install pulled in $gpu"; fi
done
echo "core install: no pygfx, wgpu, imgui_bundle or rendercanvas"

cd "$tmp/work"  # outside the checkout: nothing can come from the source tree
demo="$("$VPY" -c 'import twinview, importlib.resources as r; print(r.files("twinview.assets") / "demo")')" \
    || die "twinview is not importable from the fresh environment"
case "$demo" in
    "$tmp/venv/"*) echo "installed demo site: $demo" ;;
    *) die "the demo site resolves outside the fresh environment: $demo" ;;
esac

section "twinview --help"
timeout 120 "$TWINVIEW" --help </dev/null || die "twinview --help (exit $?)"

section "twinview check <installed demo site>"
timeout 300 "$TWINVIEW" check "$demo" </dev/null || die "twinview check $demo (exit $?)"

section "twinview serve <installed demo site> (core install, no GPU stack)"
port="$("$VPY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
TWINVIEW_NODE_MODULES="$ROOT/viewer/web/node_modules" "$TWINVIEW" serve "$demo" --port "$port" \
    </dev/null >"$tmp/serve.log" 2>&1 &
serve_pid=$!
served=0
for _ in $(seq 1 120); do
    if "$VPY" - "$port" <<'EOF' 2>/dev/null; then served=1; break; fi
import sys, urllib.request
port = sys.argv[1]
for path, least in (("/", 200), ("/site.glb", 10000)):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
        assert r.status == 200 and len(r.read()) >= least
EOF
    sleep 0.5
done
kill -TERM "$serve_pid" 2>/dev/null || true
wait "$serve_pid" 2>/dev/null || true
[ "$served" = 1 ] || { cat "$tmp/serve.log" >&2; die "twinview serve did not serve the page and the site model"; }
echo "served the page and site.glb without a GPU stack"

section "twinview render without the desktop extra says what to install"
if out="$("$TWINVIEW" render "$demo" --out "$tmp/work/none.png" 2>&1 </dev/null)"; then
    die "render succeeded without the GPU stack?"
fi
case "$out" in
    *"twinview[desktop]"*) echo "$out" ;;
    *) echo "$out" >&2; die "render without the desktop extra did not name it" ;;
esac
case "$out" in *Traceback*) die "a traceback instead of one line" ;; esac

section "pip install the [desktop] extra"
"$VPY" -m pip install -qq "${wheel}[desktop]" </dev/null || die "pip install ${wheel}[desktop]"

section "twinview render <installed demo site> --size $SIZE"
shot="$tmp/work/shot.png"
timeout 600 "$TWINVIEW" render "$demo" --out "$shot" --size "$SIZE" </dev/null \
    || die "twinview render (exit $?)"
[ -s "$shot" ] || die "twinview render wrote no PNG at $shot"
"$VPY" - "$shot" "$SIZE" <<'EOF' || die "the rendered PNG is not a real picture"
import sys
import numpy as np
from PIL import Image

path, size = sys.argv[1], tuple(int(v) for v in sys.argv[2].split("x"))
with Image.open(path) as im:
    fmt, rgb = im.format, np.asarray(im.convert("RGB"))
h, w = rgb.shape[:2]
pixels = rgb.reshape(-1, 3)
colours = len(np.unique(pixels, axis=0))
spread = float(pixels.std(axis=0).max())
print(f"{path}: {fmt} {w}x{h}, {colours} distinct colours, channel spread {spread:.1f}")
if fmt != "PNG":
    sys.exit(f"not a PNG: {fmt}")
if (w, h) != size:
    sys.exit(f"size {w}x{h}, asked for {size[0]}x{size[1]}")
if colours < 16 or spread < 4.0:
    sys.exit("the picture is (nearly) one flat colour: nothing was drawn")
EOF
finish
echo "install-check: OK"
