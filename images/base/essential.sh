#!/bin/sh
# mmdebstrap essential hook ($1 = the new root): under emulation update-initramfs is slow (≈9 min a run) and
# the kernel and initramfs-tools packages would each run it; divert it now, base/customize.sh runs it once.
set -eu
root="$1"
chroot "$root" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs
printf '#!/bin/sh\necho "update-initramfs: deferred by the hallq base build" >&2\n' > "$root/usr/sbin/update-initramfs"
chmod 0755 "$root/usr/sbin/update-initramfs"
