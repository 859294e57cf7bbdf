#!/usr/bin/env bash
# Creates .venv in the repo root (if missing) and installs voiceloop with everything it needs.
# Idempotent: a second run only checks. Usage: scripts/setup.sh [--test | --qwen3]
# (--test includes every optional recogniser the tests run: FunASR, qwen-asr.)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
VENV="$ROOT/.venv"
TORCH_VERSION="2.13.0"   # a CPU build; anything unpinned lets pip pull gigabytes of CUDA
EXTRAS="${1:-}"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# --- Debian packages. espeak-ng, pocketsphinx and silero-vad ship inside their wheels;
# the echo canceller and the audio devices need system libraries.
DEBIAN_PACKAGES=(
  libspeexdsp1        # speex echo canceller + preprocessor (voiceloop/aec/speex.py)
  gcc                 # builds PyAudio, and speexdsp at -O3 (voiceloop/aec/speex_build.py)
  libportaudio2       # real audio devices through sounddevice / PyAudio
  portaudio19-dev     # to build PyAudio
  libasound2-plugins  # ALSA's pulse plugin: how PortAudio sees PulseAudio / PipeWire
  pulseaudio          # the tests' private sound server (null sinks as real devices)
  pulseaudio-utils    # pactl, paplay, parec for those tests
)
# The web page's browser tests drive Debian's Chromium (Playwright's own download is not used).
[ "$EXTRAS" = "--test" ] && DEBIAN_PACKAGES+=(chromium)
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    say "missing Debian packages: ${missing[*]} — install them (sudo apt-get install ${missing[*]}); continuing without"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

# Smart Turn v3.2 (the end-of-turn model, 8.7 MB) out of the pipecat-ai wheel on PyPI, when
# missing. Without it only the turn detector is off (and its tests skip), so a failure warns.
fetch_turn_model() {
  "$VENV/bin/python" -c "import sys; from voiceloop.turn import models; sys.exit(not models.is_present())" \
    2>/dev/null && return 0
  say "downloading the Smart Turn model (voiceloop models download smart-turn)"
  "$VENV/bin/python" -m voiceloop models download smart-turn \
    || say "could not download the Smart Turn model (is PyPI reachable?): the turn detector is off" \
           "until you run: $VENV/bin/python -m voiceloop models download smart-turn"
}

# speexdsp's canceller compiled at -O3 from its release source (Debian's archive, sha256
# pinned): the same output as the system library for ~40 % less CPU a frame. Without a compiler
# or the download the system libspeexdsp is used, so a failure warns.
build_speex() {
  "$VENV/bin/python" -c "import sys; from voiceloop.aec import speex_build; sys.exit(speex_build.built_library() is None)" \
    2>/dev/null && return 0
  say "building speexdsp's echo canceller at -O3 (once; python -m voiceloop.aec.speex_build)"
  "$VENV/bin/python" -m voiceloop.aec.speex_build || say "continuing with the system libspeexdsp"
}

stamp="$VENV/.voiceloop-installed$EXTRAS"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && "$VENV/bin/python" -c "import torch, voiceloop" 2>/dev/null; then
  build_speex
  fetch_turn_model
  exit 0
fi

if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  say "installing torch==$TORCH_VERSION (CPU) first"
  "${PIP[@]}" install -q "torch==$TORCH_VERSION"
fi

# The wake-word models are small (numpy + a bundled TFLite library): kiosk mode works out of the box.
target=".[wake]"
[ "$EXTRAS" = "--test" ] && target=".[test,wake]"
[ "$EXTRAS" = "--qwen3" ] && target=".[qwen3,wake]"  # Qwen3-ASR (asr.name = "qwen3")
say "installing voiceloop ($target)"
# The constraint keeps every dependency on the torch already installed.
"${PIP[@]}" install -q -e "$target" --constraint <(echo "torch==$TORCH_VERSION")
# funasr-onnx (asr.name = "paraformer-onnx"; its tests) without its dependencies: its wheel pins
# numpy<=1.26.4 for its fsmn-vad alone, which voiceloop does not use, and following the pin would
# downgrade numpy under everything else. Its real dependencies are the [paraformer-onnx] extra
# (in [test] too). For the adapter alone: pip install -e '.[paraformer-onnx]' then this line.
if [ "$EXTRAS" = "--test" ]; then
  say "installing funasr-onnx (--no-deps: its numpy pin is only for a VAD voiceloop does not use)"
  "${PIP[@]}" install -q --no-deps "funasr-onnx==0.4.3"
fi
# The echo canceller's compiled kernels (voiceloop/aec/*_kernels.py): compiled once here
# (5-15 s) and cached next to the package, so the first `voiceloop run` only loads them.
say "compiling the echo canceller's kernels (numba, once)"
"$VENV/bin/python" -c "import voiceloop.aec.residual_kernels, voiceloop.aec.pcm_kernels"
touch "$stamp"
build_speex
fetch_turn_model
say "done"
