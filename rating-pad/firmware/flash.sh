#!/usr/bin/env bash
# Install the rating pad firmware on a Pico W that runs MicroPython 1.23 or later (make flash-pad PORT=...).
# Compiles the modules with mpy-cross, installs umqtt.simple from micropython-lib with mip (through
# mpremote: the host fetches it), copies the modules, main.py and, if there is one, pad.json, then resets.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$here/../../.venv/bin
port=${1:?usage: flash.sh PORT (e.g. /dev/ttyACM0)}
[ -e "$port" ] || { echo "flash-pad: $port does not exist (is the Pico W plugged in?)" >&2; exit 1; }
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
for m in padcore padjournal picopad; do
  "$venv/mpy-cross" -o "$build/$m.mpy" "$here/$m.py"
done
mp() { "$venv/mpremote" connect "$port" "$@"; }
mp mip install umqtt.simple
for f in "$build"/*.mpy; do mp cp "$f" ":$(basename "$f")"; done
mp cp "$here/main.py" :main.py
if [ -f "$here/pad.json" ]; then
  mp cp "$here/pad.json" :pad.json
elif ! mp fs cat :pad.json >/dev/null 2>&1; then
  echo "flash-pad: the board has no pad.json: copy pad.example.json to $here/pad.json, fill it in, run again" >&2
  exit 1
fi
mp reset
echo "flash-pad: installed on $port" >&2
