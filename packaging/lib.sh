# shellcheck shell=bash
# Shared helpers for the packaging scripts (sourced, not run).
# section NAME: close the previous section with its duration, print a header for the next.
# finish: close the last section.

_section_name=""
_section_start=""

_section_close() {
    if [ -n "$_section_name" ]; then
        printf '==> %s: %s\n' "$_section_name" \
            "$(awk -v a="$_section_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }')"
        _section_name=""
    fi
}

section() {
    _section_close
    _section_name="$1"
    _section_start="$EPOCHREALTIME"
    printf '\n==> %s [%s]\n' "$1" "$(date +%H:%M:%S)"
}

finish() { _section_close; }

die() {
    _section_close
    printf '\nFAILED: %s\n' "$*" >&2
    exit 1
}
