#!/bin/sh
# mmdebstrap customize hook ($1 = the new root): what needs the target's own tools (run under emulation), once.
set -eu
root="$1"
# An initramfs that boots both a Pi (SD card) and QEMU's virt machine (virtio disk), by label.
cat >> "$root/etc/initramfs-tools/modules" <<'MODS'
# hallq: QEMU virt (tests) besides the Pi's own SD card drivers
virtio_pci
virtio_mmio
virtio_blk
MODS
rm -f "$root/usr/sbin/update-initramfs"
chroot "$root" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs
chroot "$root" update-initramfs -c -k all
# The unprivileged user every hallq app runs as (groups: screen, input, sound, serial, printers, GPIO).
chroot "$root" groupadd --system gpio
chroot "$root" useradd --system --home-dir /var/lib/hallq --no-create-home --shell /usr/sbin/nologin \
    --groups video,render,input,audio,dialout,lp,gpio hallq
chroot "$root" apt-get clean
rm -rf "$root/var/lib/apt/lists/"*
