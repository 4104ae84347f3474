#!/usr/bin/env bash
# System libraries Composer Capsules uses: the FluidSynth synthesizer (real audio; a
# built-in synthesizer is the fallback) and, for the browser tests, Chromium.
# Installs them with apt-get when run as root; otherwise says what to install.
set -euo pipefail

want=()
ldconfig -p 2>/dev/null | grep -q 'libfluidsynth\.so\.3' || want+=(libfluidsynth3)
if [[ "${CAPSULE_BROWSER_TESTS:-0}" == "1" ]]; then
    command -v chromium >/dev/null 2>&1 || want+=(chromium)
fi
[[ ${#want[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: installing ${want[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || echo "system-deps: apt-get update failed; trying the install anyway"
    if ! apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null; then
        echo "system-deps: apt-get could not install ${want[*]}; audio falls back to the built-in synthesizer" >&2
    fi
else
    echo "system-deps: please install these system packages for full features: ${want[*]}" >&2
    echo "system-deps:   sudo apt-get install ${want[*]}   (Debian/Ubuntu; macOS: brew install fluid-synth)" >&2
    echo "system-deps: continuing; audio falls back to the built-in synthesizer" >&2
fi
