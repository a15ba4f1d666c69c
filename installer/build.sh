#!/usr/bin/env bash
# One build command: the frozen bundle, the Debian package and the Windows installer into dist/,
# with each artefact's size. Options: installer/build.py --help.
set -euo pipefail
cd "$(dirname "$0")/.."
# PyInstaller (a test extra) and dpkg-dev, lintian, nsis, patchelf, binutils (.ci/setup's test list).
bash .ci/setup --test >&2
exec .venv/bin/python installer/build.py "$@"
