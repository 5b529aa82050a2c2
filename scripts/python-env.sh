#!/usr/bin/env bash
# Creates the Python virtual environment of the Python client (clients/python)
# and installs its pinned requirements (clients/python/requirements.txt) into it.
#
#   python-env.sh [--dir DIR] [--force]
#                 make DIR a venv with the requirements installed; first stdout
#                 line: the venv's python
#
# DIR defaults to $ORDERFLOW_PYTHON_VENV or build/python-venv. Idempotent: a
# stamp file (DIR/.orderflow-requirements) holds the SHA-256 of the
# requirements file and the interpreter's version; while both are unchanged,
# nothing is installed again (no network). --force installs again anyway.
# The venv is made with `$PYTHON -m venv` ($PYTHON defaults to python3; Debian
# needs python3-venv, which scripts/setup.sh installs).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
requirements="$root/clients/python/requirements.txt"
dir="${ORDERFLOW_PYTHON_VENV:-$root/build/python-venv}"
python="${PYTHON:-python3}"
force=0

die() { echo "python-env.sh: $*" >&2; exit 1; }
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) [[ -n "${2:-}" ]] || { echo "python-env.sh: --dir needs a directory" >&2; exit 2; }; dir="$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "python-env.sh: unknown argument '$1' (see python-env.sh --help)" >&2; exit 2 ;;
  esac
done

command -v "$python" >/dev/null || die "$python not found: install Python 3 (sudo apt-get install python3 python3-venv, or bash scripts/setup.sh)"
[[ -f "$requirements" ]] || die "$requirements is missing"
mkdir -p "$(dirname "$dir")"
dir="$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")"

# One installer at a time (scripts/test.sh and the ctest wrapper may both call this).
exec 9>"$dir.lock"
flock 9

stamp="$dir/.orderflow-requirements"
want="$(sha256sum "$requirements" | cut -d' ' -f1) $("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
venv_python="$dir/bin/python"
if ((force == 0)) && [[ -x "$venv_python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
   "$venv_python" -c '' 2>/dev/null; then
  echo "$venv_python"
  exit 0
fi

if [[ ! -x "$venv_python" ]] || ! "$venv_python" -c 'import pip' 2>/dev/null ||
   [[ -f "$stamp" && "${want#* }" != "$(cut -d' ' -f2 "$stamp")" ]]; then
  echo "python-env.sh: creating a virtual environment in $dir" >&2
  rm -rf "$dir"
  "$python" -m venv "$dir" >&2 ||
    die "'$python -m venv' failed: on Debian install python3-venv (sudo apt-get install python3-venv, or bash scripts/setup.sh)"
fi
rm -f "$stamp"
echo "python-env.sh: installing $(grep -cv '^\s*\(#\|$\)' "$requirements") pinned package(s) from ${requirements#"$root"/}" >&2
"$venv_python" -m pip install --quiet --disable-pip-version-check --requirement "$requirements" >&2 ||
  die "pip could not install ${requirements#"$root"/} into $dir (is PyPI reachable?)"
echo "$want" >"$stamp"
echo "$venv_python"
