#!/usr/bin/env bash
# Download, here, what the GPU machine lacks (it has no network): the wheels for its
# Python 3.12 into .whl/ (the versions the CPU tests use; setuptools >= 77 only builds our
# package there), and the GL loader packages into .gl/ (EGL for the live and offline bench
# sections and the render). scripts/gpu_check.sh installs both there; torch, triton, numpy,
# pytest and the rest are on the machine already. About 40 MB: with the tree (~24 MB) it
# stays under the device tool's 64 MiB. Both folders are in .gitignore: they travel only
# when a call carries them (carry=[".whl", ".gl"]).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl .gl
platforms=()
for p in manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_24 \
         manylinux_2_17 manylinux2014 manylinux_2_5 manylinux1; do
  platforms+=(--platform "${p}_x86_64")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${platforms[@]}" -d .whl \
  librosa==0.11.0 audioread==3.1.0 soxr==1.1.0 soundfile==0.14.0 cffi==2.1.1 \
  pycparser==3.12 pooch==1.9.0 decorator==5.3.1 platformdirs==4.14.8 \
  moderngl==5.13.0 glcontext==3.1.0 glfw==2.11.0 av==18.1.0 tomlkit==0.15.2 \
  python-osc==1.10.2 python-rtmidi==1.5.8 sounddevice==0.5.6 setuptools==84.0.0
# amd64 lists of their own, so the machine's own apt state is untouched.
lists=/tmp/lyriscope-amd64-lists
mkdir -p "$lists/partial"
apt_opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$lists")
apt-get -qq "${apt_opts[@]}" update
(cd .gl && apt-get -qq "${apt_opts[@]}" download libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
du -sh .whl .gl
