"""Build the twinview wheel from a clean copy of the source and check that it ships everything.

Usage: python packaging/build_wheel.py OUT_DIR [--isolated] [--check]

The build runs on a copy of the files the build needs, so a stale build/ folder
in the checkout can never leak deleted files into the wheel, and concurrent
builds never share one. Prints the wheel's path on the last line of stdout.

--isolated   build with pip's build isolation (what `pip install .` does);
             without it the running interpreter's setuptools is used.
--check      compare the wheel with the source tree and exit 1 if a module,
             shader, demo asset or web file is missing from it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
TOP_FILES = ("pyproject.toml", "README.md", "LICENSE", "LICENSE.txt", "MANIFEST.in", "setup.py", "setup.cfg")
SKIP_DIRS = {"__pycache__", "node_modules", ".pytest_cache", ".hypothesis"}
# Data that must ship, as (source folder, glob below it); every match must be in the wheel.
DATA = (("viewer/shaders", "**/*.wgsl"), ("viewer/assets/demo", "**/*"), ("viewer/web/static", "**/*"))


def package_roots(root: Path = ROOT) -> dict[str, str]:
    """Source folder -> folder in the wheel, from pyproject's package-dir ('viewer' -> 'twinview')."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    package_dir = config["tool"]["setuptools"]["package-dir"]
    return {src.strip("/"): pkg.replace(".", "/") for pkg, src in package_dir.items()}


def wheel_path_of(source: str, roots: dict[str, str]) -> str:
    """Where a source file (path relative to the checkout) lands in the wheel."""
    best = max((r for r in roots if source == r or source.startswith(r + "/")), key=len, default=None)
    if best is None:
        raise ValueError(f"{source} is outside every package folder")
    return roots[best] + source[len(best):]


def _files(folder: Path, pattern: str) -> list[Path]:
    return [
        p for p in folder.glob(pattern)
        if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(folder).parts) and p.suffix != ".pyc"
    ]


def _package_modules(root: Path, top: str) -> list[Path]:
    """Every .py file in a folder that is a package, walking down from a package root."""
    found: list[Path] = []
    stack = [root / top]
    while stack:
        folder = stack.pop()
        if not (folder / "__init__.py").is_file():
            continue
        found.extend(p for p in folder.glob("*.py") if p.is_file())
        stack.extend(d for d in folder.iterdir() if d.is_dir() and d.name not in SKIP_DIRS)
    return found


def expected_files(root: Path = ROOT) -> set[str]:
    """Paths the wheel must contain: every module of every package folder, plus the data in DATA."""
    roots = package_roots(root)
    sources: list[Path] = []
    for top in roots:
        sources.extend(_package_modules(root, top))
    for folder, pattern in DATA:
        if (root / folder).is_dir():
            sources.extend(_files(root / folder, pattern))
    return {wheel_path_of(p.relative_to(root).as_posix(), roots) for p in sources}


def wheel_names(wheel: Path) -> set[str]:
    """File names inside a wheel (no directory entries)."""
    with zipfile.ZipFile(wheel) as zf:
        return {n for n in zf.namelist() if not n.endswith("/")}


def problems(wheel: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with a wheel built from root: missing files, or top-level folders it should not have."""
    names = wheel_names(wheel)
    found = [f"missing from the wheel: {n}" for n in sorted(expected_files(root) - names)]
    tops = {PurePosixPath(n).parts[0] for n in names}
    allowed = {r.split("/")[0] for r in package_roots(root).values()}
    for top in sorted(tops - allowed):
        if not top.endswith((".dist-info", ".data")):
            found.append(f"unexpected top-level entry in the wheel: {top}")
    return found


def stage_source(dest: Path, root: Path = ROOT, extra: dict[str, bytes] | None = None) -> Path:
    """Copy what the build needs (pyproject, readme, package folders) into dest; add `extra` files."""
    ignore = shutil.ignore_patterns(*SKIP_DIRS, "*.pyc", "*.egg-info", "build", "dist")
    for name in TOP_FILES:
        if (root / name).is_file():
            shutil.copy2(root / name, dest / name)
    for top in package_roots(root):
        if (root / top).is_dir():
            shutil.copytree(root / top, dest / top, ignore=ignore, dirs_exist_ok=True)
    for rel, data in (extra or {}).items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(data)
    return dest


def build_wheel(out_dir: Path, root: Path = ROOT, isolated: bool = False, extra: dict[str, bytes] | None = None) -> Path:
    """Build the wheel from a staged copy of root into out_dir; return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="twinview-src-") as tmp:
        stage = stage_source(Path(tmp), root, extra)
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out_dir), str(stage)]
        if not isolated:
            cmd.insert(5, "--no-build-isolation")
        result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            hint = ""
            if "bdist_wheel" in result.stderr + result.stdout:
                hint = "\nhint: this interpreter's setuptools is too old; install the test extra: pip install -e '.[test]'"
            raise RuntimeError(f"wheel build failed ({' '.join(cmd)}):\n{result.stdout}\n{result.stderr}{hint}")
    wheels = sorted(out_dir.glob("twinview-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise RuntimeError(f"no twinview wheel in {out_dir}")
    return wheels[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--isolated", action="store_true", help="use pip's build isolation")
    parser.add_argument("--check", action="store_true", help="fail if the wheel misses files of the source")
    args = parser.parse_args(argv)
    try:
        wheel = build_wheel(args.out_dir, isolated=args.isolated)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.check:
        found = problems(wheel)
        for line in found:
            print(line, file=sys.stderr)
        if found:
            return 1
    print(wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
