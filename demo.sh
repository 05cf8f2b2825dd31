#!/usr/bin/env bash
# Runs natbox. Today that is the engine demo: a scripted scenario through the real
# translation engine, printing each packet's fate, the session table and the counters.
# The host-mode dataplane and the QEMU appliance replace it as they land.
set -euo pipefail
cd "$(dirname "$0")"
./tests/setup.sh
cargo run --release -p appliance -- demo natbox.toml
