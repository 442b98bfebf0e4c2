#!/usr/bin/env bash
# Check twinview as a user gets it: build the wheel the way `pip install .` does,
# check it ships every module, shader, demo asset and web file, install it (not
# editable) into a fresh virtual environment, then, from a folder outside the
# checkout, run the CLI on the installed demo site and check the rendered PNG.
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

section "pip install the wheel into the fresh environment"
"$VPY" -m pip install -qq "$wheel" </dev/null || die "pip install $wheel"

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
