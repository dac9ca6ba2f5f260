#!/usr/bin/env python3
"""Guest side of scripts/bench-compare: the Linux kernel 9p client, booted in user-mode-linux by
run-9p-battery, on a mount of the server under test.

    python3 bench-guest.py MOUNT RESULTS.json MIB SMALL_SECONDS SMALL_MAX

 - dd if=/dev/zero of=MOUNT/bench-dd.dat bs=1M count=MIB conv=fsync, timed;
 - the guest's caches dropped, then dd of the file to /dev/null with bs=1M, timed;
 - the small-file loop, in this one process (each guest system call is a host ptrace round
   trip, so no command per file): create + write 4 KiB + close + stat + unlink of one name in
   MOUNT/bench-small, until SMALL_SECONDS have passed or SMALL_MAX cycles are done.
Writes RESULTS.json: MiB/s for both dd runs, cycles per second for the loop, or "error".
"""
import json
import os
import subprocess
import sys
import time


def dd(arguments):
    began = time.monotonic()
    done = subprocess.run(["dd"] + arguments, capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - began
    if done.returncode != 0:
        raise RuntimeError("dd %s: %s" % (" ".join(arguments), done.stderr.strip()))
    return seconds


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def small_files(directory, seconds, limit):
    os.mkdir(directory)
    path = os.path.join(directory, "small")
    data = b"\x5a" * 4096
    cycles = 0
    began = time.monotonic()
    deadline = began + seconds
    while cycles < limit and time.monotonic() < deadline:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        try:
            if os.write(fd, data) != len(data):
                raise RuntimeError("short write")
        finally:
            os.close(fd)
        if os.stat(path).st_size != len(data):
            raise RuntimeError("size after close is not 4096")
        os.unlink(path)
        cycles += 1
    elapsed = time.monotonic() - began
    os.rmdir(directory)
    return cycles, elapsed


def main():
    mount, results = sys.argv[1], sys.argv[2]
    mib, small_seconds, small_max = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    report = {"mountLine": os.environ.get("BATTERY_MOUNT_LINE", ""), "mib": mib}
    try:
        data = os.path.join(mount, "bench-dd.dat")
        write_seconds = dd(["if=/dev/zero", "of=" + data, "bs=1M", "count=%d" % mib, "conv=fsync"])
        size = os.stat(data).st_size
        if size != mib << 20:
            raise RuntimeError("dd wrote %d bytes, not %d" % (size, mib << 20))
        drop_caches()
        read_seconds = dd(["if=" + data, "of=/dev/null", "bs=1M"])
        os.unlink(data)
        cycles, small_elapsed = small_files(os.path.join(mount, "bench-small"), small_seconds, small_max)
        report.update({
            "ddWriteSeconds": write_seconds, "ddWriteMiBps": mib / write_seconds,
            "ddReadSeconds": read_seconds, "ddReadMiBps": mib / read_seconds,
            "smallCycles": cycles, "smallSeconds": small_elapsed, "smallPerSecond": cycles / small_elapsed,
        })
    except Exception as error:  # reported to the host, which marks the rows failed
        report["error"] = "%s: %s" % (type(error).__name__, error)
    with open(results + ".tmp", "w") as f:
        json.dump(report, f)
    os.rename(results + ".tmp", results)


if __name__ == "__main__":
    main()
