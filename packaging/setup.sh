#!/usr/bin/env bash
# Set up a twinview checkout on Debian 12: system packages, a Python virtual
# environment in .venv with twinview (editable) and its test tools, and the web
# page's npm dependencies.
#
# Idempotent: each step checks first and does nothing when already done, so a
# second run takes well under a second. Quiet: one line per step; the output of
# apt, pip and npm goes to a log that is printed only when a step fails.
#
# Environment:
#   TWINVIEW_SETUP_VERBOSE=1   show the full output of every command
#   PYTHON=python3.11          interpreter that creates the virtual environment
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
WEB="$ROOT/viewer/web"
PYTHON="${PYTHON:-python3}"
VERBOSE="${TWINVIEW_SETUP_VERBOSE:-0}"
# Bump to force every checkout to reinstall its Python environment once.
STAMP_VERSION=1

# What rendering, messaging and browser tests need. --no-install-recommends keeps
# the set exact, so X client libraries and xauth (for xvfb-run) are listed.
APT_PACKAGES=(
    ca-certificates
    mesa-vulkan-drivers libvulkan1
    mosquitto mosquitto-clients
    chromium
    libnss3-tools openssl
    xvfb xauth
    libx11-6 libx11-xcb1 libxext6 libxrandr2 libxcursor1 libxi6 libxinerama1
    libxkbcommon0 libxkbcommon-x11-0 libxxf86vm1 libgl1 libegl1
    fonts-dejavu-core fonts-liberation
    postgresql
)

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
export NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false

LOG="$(mktemp -t twinview-setup.XXXXXX)"
trap 'rm -f "$LOG"' EXIT

say() { printf 'setup: %s\n' "$*" >&2; }

now() { printf '%s' "$EPOCHREALTIME"; }

since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }

fail() {
    # fail MESSAGE [show-log]: print why, the tail of the log, keep the log, exit 1.
    say "FAILED: $1"
    if [ "${2:-}" = show-log ] && [ -s "$LOG" ]; then
        local kept="${TMPDIR:-/tmp}/twinview-setup-failed.log"
        cp "$LOG" "$kept"
        printf '%s\n' "---- last lines of the log (full log: $kept) ----" >&2
        tail -n 60 "$LOG" | sed 's/^/  | /' >&2
        printf '%s\n' "----" >&2
    fi
    exit 1
}

run() {
    # run WHAT CMD...: run CMD with no stdin; its output goes to the log unless verbose.
    local what="$1"; shift
    local rc=0
    printf '\n$ %s\n' "$*" >>"$LOG"
    if [ "$VERBOSE" = 1 ]; then
        "$@" </dev/null || rc=$?
    else
        "$@" </dev/null >>"$LOG" 2>&1 || rc=$?
    fi
    [ "$rc" -eq 0 ] || fail "$what (exit $rc): $*" show-log
}

hash_of() {
    # hash_of FILE... TEXT: one sha256 over the files that exist and a text.
    local text="${*: -1}"
    local files=("${@:1:$#-1}")
    { for f in "${files[@]}"; do [ -f "$f" ] && cat "$f"; done; printf '%s' "$text"; } | sha256sum | cut -d' ' -f1
}

# One setup at a time per checkout (two test runs started together share .venv).
exec 9<"$ROOT"
if ! flock -n 9; then
    say "waiting for another setup of this checkout to finish"
    flock 9
fi

# ---- Debian packages --------------------------------------------------------
is_installed() { dpkg-query -W -f='${db:Status-Abbrev}\n' "$1" 2>/dev/null | grep -q '^ii'; }

venv_ok() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null
}

t0="$(now)"
command -v dpkg-query >/dev/null || fail "dpkg-query not found: this script sets up Debian (12) systems"
wanted=("${APT_PACKAGES[@]}")
if ! command -v "$PYTHON" >/dev/null; then
    wanted+=(python3 python3-venv)
elif ! venv_ok && [ "$("$PYTHON" -c 'import sys; print(sys.prefix)')" = /usr ]; then
    wanted+=(python3-venv)  # Debian's own python3 creates venvs only with this package
fi
if [ -f "$WEB/package.json" ] && ! command -v npm >/dev/null; then
    wanted+=(nodejs npm)
fi
# One dpkg-query for all: names whose status is "ii" (installed), once per architecture.
# dpkg-query exits 1 when it has never heard of one of the names: that is an answer, not an error.
installed=" $({ dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${wanted[@]}" 2>/dev/null || true; } |
    awk '$2 ~ /^ii/ { printf "%s ", $1 }')"
missing=()
for pkg in "${wanted[@]}"; do
    [[ "$installed" == *" $pkg "* ]] || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
    say "debian packages: all ${#wanted[@]} present ($(since "$t0"))"
else
    say "debian packages: installing ${missing[*]}"
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if ! { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }; then
            fail "need root to install: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
        fi
        sudo=(sudo -n)
    fi
    apt_opts=(-y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    run "apt-get update" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update
    run "apt-get install" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}"
    still=()
    for pkg in "${missing[@]}"; do is_installed "$pkg" || still+=("$pkg"); done
    [ "${#still[@]}" -eq 0 ] || fail "apt-get did not install: ${still[*]}" show-log
    say "debian packages: installed ${#missing[@]} ($(since "$t0"))"
fi

# ---- Python environment -----------------------------------------------------
t0="$(now)"
if ! venv_ok; then
    rm -rf "$VENV"
    run "create the virtual environment" "$PYTHON" -m venv "$VENV"
fi
py_version="$("$VENV/bin/python" -c 'import sys; print(sys.version)')"
stamp="$(hash_of "$ROOT/pyproject.toml" "$STAMP_VERSION $ROOT $py_version")"
installed_here() {
    # twinview in .venv is the editable install of this checkout, with the test tools.
    [ -x "$VENV/bin/pytest" ] && [ -x "$VENV/bin/lint-imports" ] && [ -x "$VENV/bin/twinview" ] &&
        "$VENV/bin/python" - "$ROOT/viewer" <<'EOF' 2>/dev/null
import pathlib, re, sys
from importlib import metadata
import twinview
if pathlib.Path(twinview.__file__).resolve().parent != pathlib.Path(sys.argv[1]).resolve():
    sys.exit(1)
for req in metadata.requires("twinview") or []:  # every dependency, test extra included, is installed
    if "extra ==" in req and '"test"' not in req and '"desktop"' not in req:
        continue
    metadata.version(re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0])
EOF
}
if [ "$(cat "$VENV/.twinview-setup" 2>/dev/null)" = "$stamp" ] && installed_here; then
    say "python: .venv up to date ($(since "$t0"))"
else
    say "python: installing twinview[test] into .venv"
    rm -f "$VENV/.twinview-setup"
    run "pip install -e '.[desktop,test]'" "$VENV/bin/python" -m pip install -q -e "${ROOT}[desktop,test]"
    installed_here || fail "twinview is not importable from $VENV after pip install" show-log
    printf '%s\n' "$stamp" >"$VENV/.twinview-setup"
    say "python: .venv ready ($(since "$t0"))"
fi

# ---- Web page dependencies --------------------------------------------------
t0="$(now)"
if [ -f "$WEB/package.json" ]; then
    command -v npm >/dev/null || fail "npm not found (Debian packages nodejs and npm provide it)"
    web_stamp() { hash_of "$WEB/package.json" "$WEB/package-lock.json" "$(node --version 2>/dev/null)"; }
    deps_present() {
        # Every package named in package.json has a folder in node_modules.
        node -e '
            const fs = require("fs"), path = require("path"), web = process.argv[1];
            const pkg = JSON.parse(fs.readFileSync(path.join(web, "package.json"), "utf8"));
            const names = Object.keys({...pkg.dependencies, ...pkg.devDependencies});
            process.exit(names.every(n => fs.existsSync(path.join(web, "node_modules", n, "package.json"))) ? 0 : 1);
        ' "$WEB" 2>/dev/null
    }
    if [ "$(cat "$WEB/node_modules/.twinview-setup" 2>/dev/null)" = "$(web_stamp)" ] && deps_present; then
        say "web: node_modules up to date ($(since "$t0"))"
    elif [ -d "$WEB/node_modules" ] && [ ! -e "$WEB/node_modules/.twinview-setup" ] &&
        npm --prefix "$WEB" ls --all >/dev/null 2>&1 </dev/null; then
        # Installed by hand before this script ran, and complete: keep it rather than reinstall.
        web_stamp >"$WEB/node_modules/.twinview-setup"
        say "web: node_modules complete ($(since "$t0"))"
    else
        if [ -f "$WEB/package-lock.json" ]; then
            run "npm ci" npm --prefix "$WEB" ci --no-audit --no-fund --loglevel=error
        else
            run "npm install" npm --prefix "$WEB" install --no-audit --no-fund --loglevel=error
        fi
        mkdir -p "$WEB/node_modules"
        web_stamp >"$WEB/node_modules/.twinview-setup"
        say "web: node_modules ready ($(since "$t0"))"
    fi
fi
