#!/usr/bin/env bash
# A throwaway venv with dlib's own Python bindings (the prebuilt `dlib-bin`
# wheel, so nothing is compiled), used only to produce reference outputs the
# tests and scripts compare our code with. Nothing of it ships.
#
#   . scripts/reference/env.sh             # sets FACES_REF_PYTHON
#   bash scripts/reference/env.sh ARGS...  # runs "$FACES_REF_PYTHON" ARGS...
#
# The venv lives in $FACES_REFERENCE_VENV (default ~/.cache/faces-reference/venv)
# and is created on first use; dlib-bin is pinned to the version our parity
# figures were measured with.
ref_venv="${FACES_REFERENCE_VENV:-$HOME/.cache/faces-reference/venv}"
ref_check='import dlib, numpy, PIL, sys; sys.exit(dlib.__version__ != "20.0.1")'
if [ ! -x "$ref_venv/bin/python" ] || ! "$ref_venv/bin/python" -c "$ref_check" 2>/dev/null; then
  echo "==> creating $ref_venv with dlib-bin 20.0.1.post1" >&2
  python3 -m venv "$ref_venv" || return 1 2>/dev/null || exit 1
  "$ref_venv/bin/pip" install --quiet --disable-pip-version-check \
    dlib-bin==20.0.1.post1 "numpy>=1.26,<3" "pillow>=10,<14" >&2 || return 1 2>/dev/null || exit 1
fi
FACES_REF_PYTHON="$ref_venv/bin/python"
export FACES_REF_PYTHON

# Executed rather than sourced: run the given script with the venv's Python.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  exec "$FACES_REF_PYTHON" "$@"
fi
