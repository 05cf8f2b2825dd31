#!/usr/bin/env bash
# Every check natbox has, in the order a failure is cheapest to see: format, lints,
# unit + RFC behaviour + property tests, fuzzing, end-to-end tests with real clients in
# network namespaces, and boot tests of the real image in QEMU. Exits non-zero on the
# first failure. Needs root. Usage: ./tests/run-all.sh   (FUZZ_SECONDS=30 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds=${FUZZ_SECONDS:-30}

./tests/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== the e2e metadata server checks itself (IMDSv2, IMDSv1-only, GCE, hang, huge on loopback)"
python3 tests/e2e/metadata_server.py --self-check

# cargo-fuzz passes flags of a nightly compiler; this project builds with the stable
# toolchain only, so RUSTC_BOOTSTRAP=1 unlocks them for the fuzz build. No sanitizer
# (-s none): the fuzzed code is safe Rust, and without ASAN the engine target runs
# ~20x more inputs in the same time (measured: 6000 vs 330 exec/s). Debug assertions
# and overflow checks are on (fuzz/Cargo.toml's release profile).
echo "== fuzzing (${fuzz_seconds} s per target)"
(
    cd fuzz
    export RUSTC_BOOTSTRAP=1
    cargo fuzz build -O -s none
    for target in engine engine_one_armed offloaded metadata_disk shell config dhcp4_client dhcp6_client ipv6_autoconf user_data cloud_volume metadata_http; do
        corpus=$(mktemp -d)
        [ -d "seeds/$target" ] && cp "seeds/$target"/* "$corpus"/
        log=$(mktemp)
        if ! cargo fuzz run -O -s none "$target" "$corpus" -- -max_total_time="$fuzz_seconds" -rss_limit_mb=4096 >"$log" 2>&1; then
            cat "$log"
            echo "fuzz target $target failed: the crashing input is in fuzz/artifacts/$target/"
            exit 1
        fi
        tail -n 2 "$log"
        rm -rf "$corpus" "$log"
    done
)
echo "== end-to-end tests (network namespaces, real clients)"
./tests/e2e/run.sh
echo "== end-to-end tests in the one-armed topology (one port with both roles, behind a VPC router)"
E2E_TOPOLOGY=one-armed ./tests/e2e/run.sh
echo "== end-to-end tests with two worker threads (engine shards, cBPF steering, hand-offs)"
E2E_WORKERS=2 ./tests/e2e/run.sh
echo "== end-to-end MTU tests with the hosts' TSO/GSO off (wire-sized frames only)"
E2E_OFFLOADS=off ./tests/e2e/run.sh test_mtu
echo "== end-to-end iperf and MTU tests with natbox's ports' offloads off (a NIC without TSO or checksum offload)"
E2E_GW_OFFLOADS=off ./tests/e2e/run.sh test_iperf test_mtu
echo "== QEMU boot tests (the real image)"
./tests/boot/test_boot.sh
echo "== QEMU boot tests of the cloud configuration sources (NoCloud cidata volume)"
./tests/boot/test_sources.sh
echo "== QEMU boot tests of the other image formats (qcow2 on BIOS, the GCP tarball on UEFI) and the ISO 9660 cloud volumes"
./tests/boot/test_images.sh
echo "== QEMU boot test of the configuration from a cloud's metadata server (EC2 IMDSv2, no volume)"
./tests/boot/test_metadata.sh
echo "all checks passed"
