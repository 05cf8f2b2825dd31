#!/usr/bin/env bash
# Boot tests of what image/build.sh writes besides build/natbox.raw, booted as the
# clouds that take each one boot it, and of the ISO 9660 cloud volumes. In QEMU on the
# boot tests' topology; each boot must forward lan -> wan translated.
# 0. build/natbox.raw as EC2 makes a volume of its imported snapshot: grown to a
#    whole number of GiB (EBS volumes are sized in GiB, 1 at least; the backup GPT
#    is then no longer at the disk's end), on NVMe (Nitro), booted with UEFI
#    (register-image --boot-mode uefi). The configuration from a natbox metadata disk.
# 1. build/natbox.qcow2 (OpenStack's disk format) as a qcow2 drive (-drive
#    format=qcow2), on legacy BIOS (SeaBIOS, syslinux): how OpenStack boots an image
#    without hw_firmware_type=uefi. The configuration from a natbox metadata disk.
# 2. build/natbox-gcp.tar.gz against GCE's rules for an imported image (a gzip
#    compressed tar whose single member is disk.raw, in the old GNU format GCE's own
#    instructions make, `tar --format=oldgnu -S`; a disk of a whole number of GiB with
#    a partition table), its disk.raw unpacked as GCE does and booted with UEFI (OVMF),
#    as GCE boots an image created with the UEFI_COMPATIBLE guest OS feature.
# 3. A cloud-init NoCloud volume as ISO 9660, label cidata, made without root the way
#    cloud-init documents (`-V cidata -J -r`, here by xorriso's mkisofs emulation), with
#    no natbox metadata disk, attached as a virtio disk: the box configures itself from
#    its user-data.
# 4. An OpenStack config drive as ISO 9660 (nova's default config_drive_format),
#    label config-2, made with the options nova passes to genisoimage, attached as nova
#    attaches it: a CD-ROM, here on virtio-scsi (the image properties
#    hw_cdrom_bus=scsi hw_scsi_model=virtio-scsi, docs/deploy.md; nova's default IDE
#    or SATA CD-ROM is not read, image/README.md). sr_mod is loaded for it by its
#    modalias and the box configures itself from /dev/sr0.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/e2e/lib.sh"
source "$root/qemu/vm.sh"
source "$root/tests/boot/lib.sh"

# The first 512-byte header of the tar inside gzip file $1, as hex, to $WORK/tar-head.
tar_head() { gzip -dc "$1" 2>/dev/null | head -c 512 | od -An -v -tx1 | tr -d ' \n' >"$WORK/tar-head"; }

# Succeeds if gzip file $1 holds a tar with one member, a regular (or GNU sparse) file
# named disk.raw: GCE refuses any other name and reads only that member.
gce_single_disk_raw() {
    local members
    gzip -t "$1" || return 1
    members=$(tar -tzf "$1")
    echo "members: $members"
    [ "$members" = disk.raw ] || return 1
    tar_head "$1"
    # The type flag (offset 156): '0' a regular file, 'S' a GNU sparse file.
    case "$(cut -c $((156 * 2 + 1))-$((157 * 2)) "$WORK/tar-head")" in
    30 | 53) ;;
    *) return 1 ;;
    esac
}

# Succeeds if the tar in gzip file $1 is in the old GNU format: the magic and version
# at offset 257 are "ustar  \0" (POSIX ustar and pax have "ustar\0" "00").
gce_oldgnu() {
    tar_head "$1"
    local magic
    magic=$(cut -c $((257 * 2 + 1))-$((265 * 2)) "$WORK/tar-head")
    echo "magic: $magic"
    [ "$magic" = 7573746172202000 ]
}

# Succeeds if disk $1 is a whole number of GiB and has a protective MBR and a GPT.
gce_disk_layout() {
    local size
    size=$(stat -c %s "$1")
    echo "disk.raw: $size bytes, $(du -k "$1" | cut -f1) KiB allocated"
    [ "$size" -gt 0 ] && [ $((size % (1 << 30))) -eq 0 ] || return 1
    [ "$(od -An -tx1 -j 510 -N 2 "$1" | tr -d ' ')" = 55aa ] &&
        [ "$(dd if="$1" bs=1 skip=512 count=8 status=none)" = "EFI PART" ]
}

# Writes ISO 9660 NoCloud volume $1 (label cidata) with user-data $2 and a meta-data,
# as cloud-init's documentation makes one (genisoimage/xorriso: -V cidata -J -r).
cidata_iso() {
    local dir=$WORK/cidata-root
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$2" "$dir/user-data"
    printf 'instance-id: iid-iso-1\nlocal-hostname: nat-iso\n' >"$dir/meta-data"
    xorriso -as mkisofs -quiet -V cidata -J -r -o "$1" "$dir" 2>"$WORK/xorriso.log"
}

# Writes ISO 9660 OpenStack config drive $1 (label config-2) with user_data $2 and a
# meta_data.json, with the genisoimage options nova's configdrive.py passes.
config2_iso() {
    local dir=$WORK/config2-root
    rm -rf "$dir" && mkdir -p "$dir/openstack/latest"
    cp "$2" "$dir/openstack/latest/user_data"
    printf '{"uuid": "83679162-1378-4288-a2d4-70e13ec132aa", "hostname": "nat-os"}\n' \
        >"$dir/openstack/latest/meta_data.json"
    xorriso -as mkisofs -o "$1" -ldots -allow-lowercase -allow-multidot -l \
        -publisher "natbox boot test" -quiet -J -r -V config-2 "$dir" 2>"$WORK/xorriso.log"
}

boot_setup
vm_metadata_disk # $WORK/meta.img and $WORK/natbox.toml, with the VM's MACs

# 0. The raw disk as an EBS volume: 1 GiB, on NVMe, UEFI.
name=ec2
cp --sparse=always "$root/build/natbox.raw" "$WORK/ec2.raw"
truncate -s 1G "$WORK/ec2.raw"
VM_BOOT=uefi VM_DISK_IMAGE=$WORK/ec2.raw VM_DISK_BUS=nvme boot_and_translate "$name" "" 180
check "$name: ACPI power button, QEMU exits within 60 s" vm_shutdown 60 powerdown
rm -f "$WORK/ec2.raw"

# 1. The qcow2 on legacy BIOS.
name=qcow2
check "$name: build/natbox.qcow2 is a qcow2 image" \
    bash -c "qemu-img info --output=json '$root/build/natbox.qcow2' | grep -q '\"format\": \"qcow2\"'"
VM_BOOT=bios VM_DISK_IMAGE=$root/build/natbox.qcow2 VM_DISK_FORMAT=qcow2 boot_and_translate "$name" "" 180
check "$name: ACPI power button, QEMU exits within 60 s" vm_shutdown 60 powerdown

# 2. The GCP tarball: GCE's rules, then its disk.raw on UEFI.
name=gcp
gcp=$root/build/natbox-gcp.tar.gz
check "$name: a gzip tar whose single member is the file disk.raw" gce_single_disk_raw "$gcp"
check "$name: the tar is in the old GNU format (tar --format=oldgnu)" gce_oldgnu "$gcp"
mkdir -p "$WORK/gcp"
tar -xzf "$gcp" -C "$WORK/gcp" disk.raw
check "$name: disk.raw is a whole number of GiB with a protective MBR and a GPT" gce_disk_layout "$WORK/gcp/disk.raw"
VM_BOOT=uefi VM_DISK_IMAGE=$WORK/gcp/disk.raw boot_and_translate "$name" "" 180
check "$name: ACPI power button, QEMU exits within 60 s" vm_shutdown 60 powerdown
rm -rf "$WORK/gcp"

# 3. NoCloud on ISO 9660, no metadata disk.
name=cidata-iso
vm_metadata_disk '/^hostname = /d'
cidata_iso "$WORK/cidata.iso" "$WORK/natbox.toml"
boot_and_translate "$name" "$WORK/cidata.iso"
check "$name: the log names the nocloud source, its instance id and the digest" \
    grep -Eq "configuration from nocloud \(/dev/vda, label cidata\), instance-id iid-iso-1, sha256 [0-9a-f]{64}" "$console"
vm_console "terminal length 0"
vm_console "show config"
check "$name: the meta-data's local-hostname fills the hostname" wait_for_line "$console" '^hostname = "nat-iso"' 30
check "$name: ACPI power button, QEMU exits within 60 s" vm_shutdown 60 powerdown

# 4. An OpenStack config drive on ISO 9660, on a virtio-scsi CD-ROM, no metadata disk.
name=config2-cdrom
config2_iso "$WORK/config2.iso" "$WORK/natbox.toml"
VM_META_BUS=scsi-cd boot_and_translate "$name" "$WORK/config2.iso"
check "$name: sr_mod loaded for the SCSI CD-ROM's modalias" \
    grep -q "module sr_mod for scsi [0-9:]* (scsi:t-0x05" "$console"
check "$name: the log names the configdrive source on /dev/sr0, its uuid and the digest" \
    grep -Eq "configuration from configdrive \(/dev/sr0, label config-2\), instance-id 83679162-1378-4288-a2d4-70e13ec132aa, sha256 [0-9a-f]{64}" "$console"
vm_console "terminal length 0"
vm_console "show config"
check "$name: meta_data.json's hostname fills the hostname" wait_for_line "$console" '^hostname = "nat-os"' 30
check "$name: ACPI power button, QEMU exits within 60 s" vm_shutdown 60 powerdown
finish
