#!/usr/bin/env bash
# A throwaway venv with the reference implementations our importers are
# checked against: dlib's own Python bindings (the prebuilt `dlib-bin` wheel,
# so nothing is compiled) and the TensorFlow Lite interpreter (ai-edge-litert).
# Used only to produce reference outputs the tests compare our code with.
# Nothing of it ships.
#
#   . scripts/reference/env.sh             # sets FACES_REF_PYTHON
#   bash scripts/reference/env.sh ARGS...  # runs "$FACES_REF_PYTHON" ARGS...
#
# The venv lives in $FACES_REFERENCE_VENV (default ~/.cache/faces-reference/venv)
# and is created on first use; dlib-bin and ai-edge-litert are pinned to the
# versions our parity figures were measured with.
ref_venv="${FACES_REFERENCE_VENV:-$HOME/.cache/faces-reference/venv}"
ref_check='import dlib, ai_edge_litert, numpy, PIL, sys; sys.exit(dlib.__version__ != "20.0.1")'
mkdir -p "$(dirname "$ref_venv")"
# Tests running at the same time must not build the venv twice.
exec 9>"$ref_venv.lock"
flock 9
if [ ! -x "$ref_venv/bin/python" ] || ! "$ref_venv/bin/python" -c "$ref_check" 2>/dev/null; then
  echo "==> creating $ref_venv with dlib-bin 20.0.1.post1 and ai-edge-litert 2.3.0" >&2
  python3 -m venv "$ref_venv" || return 1 2>/dev/null || exit 1
  "$ref_venv/bin/pip" install --quiet --disable-pip-version-check \
    dlib-bin==20.0.1.post1 ai-edge-litert==2.3.0 "numpy>=1.26,<3" "pillow>=10,<14" >&2 || return 1 2>/dev/null || exit 1
fi
flock -u 9
FACES_REF_PYTHON="$ref_venv/bin/python"
export FACES_REF_PYTHON

# Executed rather than sourced: run the given script with the venv's Python.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  exec "$FACES_REF_PYTHON" "$@"
fi
