#!/bin/busybox sh
# PID 1 of the cgroup-v2 test machine (tests/vm.rs), run by the static
# busybox of the initramfs that tests/vm/initramfs.rs packs. Two stages.
#
# Stage 1 (`/init`, in the initramfs):
# 1. Loads the modules listed in /modules/order (virtio PCI, 9p, overlay).
# 2. Mounts the host's root read-only (9p tag "hostroot") on /host, and the
#    host's shared directory (tag "out", writable) on /host/run/vm/out.
# 3. Gives /host its own /proc, /sys, a pure cgroup v2 hierarchy on
#    /sys/fs/cgroup (the kernel runs with cgroup_no_v1=all and there is no
#    systemd), /dev, and tmpfs on /tmp, /run, /var/tmp and /root.
# 4. Puts a writable copy of the host's test fixtures over the target's tmp
#    directory (the support code locks and reads them there).
# 5. Copies busybox and this script to /host/run/vm and switch_roots into
#    /host, running this script's stage 2. switch_root (not chroot) mounts
#    the new root over the initramfs's "/", as on any booted machine:
#    `setns` into a container's mount namespace (berth exec) finds the
#    container's root by looking down from there.
#
# Stage 2 (`/run/vm/init run`, on the host's root):
# 6. Runs the test binary named in /run/vm/out/job with BERTH_VM_GUEST=1,
#    its output in out/tests.log and its exit code in out/status.
# 7. Records what is left afterwards, for the host to judge: cgroups
#    (out/cgroups-left), mounts (out/mounts-before, out/mounts-after) and
#    processes (out/procs-left); then powers off.
#
# Any failure before the tests run is written to out/status as
# "setup: WHAT" (or, without it, to the console) before powering off.

bb=/bin/busybox
export PATH=/bin

halt() {
    $bb sync
    $bb poweroff -f
}

fail() {
    echo "vm init: $*"
    if $bb mountpoint -q /out; then
        echo "setup: $*" > /out/status
    fi
    halt
}

# Stage 2: the host's root is "/".
stage2() {
    out=/run/vm/out
    . $out/job
    $bb cat /proc/mounts > $out/mounts-before
    /usr/bin/env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root BERTH_VM_GUEST=1 RUST_BACKTRACE=0 \
        "$TEST_BIN" --test-threads="$THREADS" > $out/tests.log 2>&1
    echo $? > $out/status

    $bb find /sys/fs/cgroup -mindepth 1 -type d > $out/cgroups-left
    $bb cat /proc/mounts > $out/mounts-after
    init=$($bb tr '\0' ' ' < /proc/1/cmdline)
    for p in /proc/[0-9]*; do
        cmd=$($bb tr '\0' ' ' < "$p/cmdline" 2>/dev/null)
        # Kernel threads have no command line; the shell itself is init's.
        if [ -n "$cmd" ] && [ "$cmd" != "$init" ]; then
            echo "${p#/proc/} $cmd"
        fi
    done > $out/procs-left
    halt
}

if [ "${1:-}" = run ]; then
    bb=/run/vm/busybox
    stage2
fi

$bb mount -t proc proc /proc || fail "mount /proc"
$bb mount -t devtmpfs dev /dev || fail "mount /dev"

for m in $($bb cat /modules/order); do
    $bb insmod "/modules/$m.ko" || fail "insmod $m"
done

ninep="trans=virtio,version=9p2000.L,msize=512000"
$bb mount -t 9p -o "$ninep,ro,cache=loose" hostroot /host || fail "mount the host's root (9p hostroot)"
$bb mount -t 9p -o "$ninep" out /out || fail "mount the shared directory (9p out)"
[ -f /out/job ] || fail "no /out/job"
. /out/job

$bb mount -t proc proc /host/proc || fail "mount /host/proc"
$bb mount -t sysfs sys /host/sys || fail "mount /host/sys"
$bb mount -t cgroup2 cgroup2 /host/sys/fs/cgroup || fail "mount cgroup2 on /host/sys/fs/cgroup"
$bb mount -t devtmpfs dev /host/dev || fail "mount /host/dev"
$bb mkdir -p /host/dev/pts /host/dev/shm
$bb mount -t devpts -o newinstance,ptmxmode=0666 devpts /host/dev/pts || fail "mount /host/dev/pts"
$bb mount -t tmpfs shm /host/dev/shm || fail "mount /host/dev/shm"
for dir in /tmp /run /var/tmp /root; do
    $bb mount -t tmpfs -o mode=1777 tmp "/host$dir" || fail "mount tmpfs on $dir"
done
$bb chmod 0700 /host/root

# The fixtures the host built, writable (their lock files are opened for
# writing) and with their times kept (so nothing is rebuilt).
$bb mkdir -p /fixtures
$bb cp -a "/host$TARGET_TMP/fixtures/." /fixtures/ || fail "copy $TARGET_TMP/fixtures"
$bb mount -t tmpfs fixtures "/host$TARGET_TMP" || fail "mount tmpfs on $TARGET_TMP"
$bb mkdir -p "/host$TARGET_TMP/fixtures"
$bb cp -a /fixtures/. "/host$TARGET_TMP/fixtures/" || fail "copy the fixtures back"

# Stage 2 runs from the new root: busybox and this script go along.
$bb mkdir -p /host/run/vm/out
$bb mount --move /out /host/run/vm/out || fail "move /out"
$bb cp /bin/busybox /init /host/run/vm/ || fail "copy busybox and init to /run/vm"
exec $bb switch_root /host /run/vm/busybox sh /run/vm/init run
