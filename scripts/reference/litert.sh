#!/usr/bin/env bash
# Runs litert_embeddings.py in a throwaway venv with a pinned TFLite interpreter
# ($FACES_REFERENCE_VENV/litert, default ~/.cache/faces-reference/litert).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${FACES_REFERENCE_VENV:-$HOME/.cache/faces-reference}/litert"
if ! "$venv/bin/python" -c "import ai_edge_litert, PIL, numpy" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check ai-edge-litert==2.3.0 numpy pillow >&2
fi
exec "$venv/bin/python" "$here/litert_embeddings.py" "$@"
