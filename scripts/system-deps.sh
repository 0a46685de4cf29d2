#!/usr/bin/env bash
# Installs the Debian packages that lyriscope's tests and demo need, only those missing.
# Offscreen GL (Mesa EGL), a virtual screen (Xvfb), audio I/O (PortAudio, libsndfile),
# a JACK server with a dummy driver for real audio/MIDI ports in tests, and Chromium for
# the curation page's browser test.
set -euo pipefail
packages=(
  xvfb xauth xdotool libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 libglx-mesa0
  libportaudio2 libsndfile1 libasound2-plugins jackd2
  chromium wordnet-base
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "system-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
