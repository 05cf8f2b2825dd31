#!/usr/bin/env bash
# Installs what natbox's build, tests and demo need on a fresh Debian machine (run as
# root). Idempotent: skips what is already there.
set -euo pipefail

need_apt=()
for pkg in python3 iproute2 iputils-ping iputils-tracepath traceroute tcpdump iperf3 ethtool socat curl coturn \
    qemu-system-x86 netsniff-ng nftables strace linux-perf \
    binutils gcc g++ openssl systemd-boot-efi ovmf qemu-utils syslinux syslinux-common mtools dosfstools; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done

rustup target list --installed | grep -q x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl

command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
