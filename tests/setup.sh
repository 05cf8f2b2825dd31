#!/usr/bin/env bash
# Installs what natbox's build, tests and demo need on a fresh Debian machine (run as
# root), then checks that every command and file the stages use is there, naming the
# package that provides a missing one. Idempotent: apt runs only when a package is not
# installed, a checked command or file is missing, or the QEMU packages disagree.
#
# One apt transaction installs the whole list, so apt resolves the versions together.
# qemu-utils and qemu-system-x86 are built from one source package and Break each
# other's other versions: a machine with qemu-utils 10 from bookworm-backports loses it
# when bookworm's qemu-system-x86 7.2 is installed (qemu-system-common 7.2 is Broken by
# it), and image/build.sh then stops at `qemu-img: command not found`. So qemu-utils is
# pinned to the version apt installs qemu-system-x86 at (its candidate: bookworm's,
# unless a newer one is already installed or pinned), downgrading it if needed.
set -euo pipefail

# command-or-absolute-path:package, per stage.
requirements=(
    # build: cargo build (gcc links, g++ builds libFuzzer for cargo-fuzz), image/build.sh
    # and natbox-image (strip, objcopy, syslinux's mtools-based installer, the EFI stub,
    # syslinux's GPT MBR), its qcow2 (qemu-img) and the ESP check (fsck.fat).
    gcc:gcc g++:g++ strip:binutils objcopy:binutils
    syslinux:syslinux mcopy:mtools mattrib:mtools fsck.fat:dosfstools qemu-img:qemu-utils
    /usr/lib/systemd/boot/efi/linuxx64.efi.stub:systemd-boot-efi
    /usr/lib/syslinux/mbr/gptmbr.bin:syslinux-common
    # e2e tests (tests/e2e/*.sh) and the benchmark (tests/bench/compare.sh).
    python3:python3 ip:iproute2 bridge:iproute2 ss:iproute2 sysctl:procps ping:iputils-ping
    tracepath:iputils-tracepath
    traceroute:traceroute tcpdump:tcpdump iperf3:iperf3 ethtool:ethtool socat:socat
    curl:curl turnserver:coturn turnutils_natdiscovery:coturn trafgen:netsniff-ng
    nft:nftables openssl:openssl strace:strace perf:linux-perf dnsmasq:dnsmasq-base
    nc:netcat-openbsd jq:jq
    # test_flowlog.sh: nfdump's IPFIX collector and reader.
    nfcapd:nfdump nfdump:nfdump
    # boot tests (tests/boot/test_boot.sh, qemu/vm.sh): QEMU, OVMF (uefi), SeaBIOS (bios).
    qemu-system-x86_64:qemu-system-x86
    # cloud configuration sources (firmware-config's sources tests, the NoCloud boot
    # test, tests/boot/test_images.sh): vfat images without root (mkfs.vfat, mcopy),
    # iso9660 images (xorriso); test_images.sh also reads the GCP tarball (tar, gzip:
    # Essential packages, always there) and the qcow2 (qemu-img, above).
    mkfs.vfat:dosfstools mcopy:mtools xorriso:xorriso
    /usr/share/OVMF/OVMF_CODE.fd:ovmf /usr/share/OVMF/OVMF_VARS.fd:ovmf
    /usr/share/seabios/bios-256k.bin:seabios
)

# Succeeds if command or file $1 is there.
present() {
    case "$1" in
    /*) [ -f "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

# Prints the installed version of package $1, or nothing.
installed_version() {
    dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$1" 2>/dev/null | sed -n 's/^ii  *//p'
}

# Succeeds if every package is installed, every command and file is there and the two
# QEMU packages have one version.
complete() {
    local req
    for req in "${requirements[@]}"; do
        [ -n "$(installed_version "${req##*:}")" ] && present "${req%:*}" || return 1
    done
    [ "$(installed_version qemu-utils)" = "$(installed_version qemu-system-x86)" ]
}

install_packages() {
    local packages qemu
    mapfile -t packages < <(printf '%s\n' "${requirements[@]##*:}" | sort -u | grep -vx 'qemu-utils\|qemu-system-x86')
    apt-get update -qq
    qemu=$(apt-cache policy qemu-system-x86 | sed -n 's/^ *Candidate: //p')
    if [ -z "$qemu" ] || [ "$qemu" = "(none)" ]; then
        echo "setup: apt has no qemu-system-x86 (check /etc/apt/sources.list*)" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --allow-downgrades \
        "${packages[@]}" "qemu-system-x86=$qemu" "qemu-utils=$qemu"
}

complete || install_packages

missing=()
for req in "${requirements[@]}"; do
    present "${req%:*}" || missing+=("${req%:*} (package ${req##*:})")
done
if [ ${#missing[@]} -gt 0 ]; then
    printf 'setup: not found after apt-get install: %s\n' "${missing[@]}" >&2
    echo "setup: install or reinstall the named packages (apt-get install --reinstall PACKAGE), or put their directory (e.g. /usr/sbin) on PATH" >&2
    exit 1
fi
if [ "$(installed_version qemu-utils)" != "$(installed_version qemu-system-x86)" ]; then
    echo "setup: qemu-utils $(installed_version qemu-utils) and qemu-system-x86 $(installed_version qemu-system-x86) differ" >&2
    exit 1
fi

# test_flowlog.sh's second IPFIX decoder (tests/e2e/ipfix_decode.py), pinned.
NETFLOW_PY=0.12.2
if ! python3 -c "import importlib.metadata as m; assert m.version('netflow') == '$NETFLOW_PY'" 2>/dev/null; then
    python3 -m pip install -q "netflow==$NETFLOW_PY"
fi
python3 -c "import netflow.ipfix" || { echo "setup: python package netflow==$NETFLOW_PY missing after pip install" >&2; exit 1; }

for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done

rustup target list --installed | grep -q x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl

command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
