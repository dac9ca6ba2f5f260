#!/usr/bin/env python3
"""Controller for the malloc interposer (Tools/mallocshim/mallocshim.c; layout documented there).

As a module:
    shim = mallocshim.Control.create("/tmp/x.ctl")   # fresh file, mode 0, before the process starts
    env = mallocshim.preload_environment(shim_so, "/tmp/x.ctl")
    ... start the process with env ...
    shim.wait_ready()
    before = shim.counters(); ...; after = shim.counters()
    shim.set_mode(mallocshim.FAIL_ALL)
    shim.record_backtraces(50)   # mode 3 for the next 50 allocations

As a command:
    mallocshim.py create PATH            fresh control file (mode 0)
    mallocshim.py show PATH              counters and mode
    mallocshim.py mode PATH MODE [ARG]   0 count, 1 fail all, 2 fail > ARG bytes, 3 record ARG backtraces,
                                         4 fail all and record the first ARG failures' backtraces
    mallocshim.py symbolize BTFILE       the backtrace file with frames resolved (llvm-symbolizer /
                                         addr2line) and Swift names demangled
"""
import mmap
import os
import re
import shutil
import struct
import subprocess
import sys
import time

MAGIC = 0x434F4C4C414D504E  # "NPMALLOC"
LAYOUT = 1
SIZE = 4096

COUNT, FAIL_ALL, FAIL_LARGER, BACKTRACE, FAIL_ALL_RECORDING = 0, 1, 2, 3, 4

OFFSETS = {
    "magic": 0, "layout": 8, "mode": 16, "threshold": 24, "bt_budget": 32, "pid": 40, "ready": 48,
    "allocs": 64, "frees": 72, "bytes": 80, "failed": 88, "reallocs": 96, "bt_recorded": 104,
    "attempts": 112, "io_enomem": 120, "io_short": 128, "io_injected": 136,
}
COUNTERS = ("allocs", "frees", "bytes", "failed", "reallocs", "bt_recorded", "attempts", "io_injected")


class Control:
    """The control file of one process, mapped MAP_SHARED."""

    def __init__(self, path):
        self.path = path
        fd = os.open(path, os.O_RDWR)
        try:
            if os.fstat(fd).st_size < SIZE:
                raise ValueError("%s is not a mallocshim control file (shorter than %d bytes)" % (path, SIZE))
            self.map = mmap.mmap(fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        # A memoryview cast to u64 makes each read and write one aligned 8-byte access.
        self.words = memoryview(self.map).cast("Q")
        if self.get("magic") != MAGIC or self.get("layout") != LAYOUT:
            raise ValueError("%s: wrong magic or layout" % path)

    @classmethod
    def create(cls, path, mode=COUNT, threshold=0, bt_budget=0):
        """A fresh control file (replaces any old one), for a process that has not started yet."""
        data = bytearray(SIZE)
        struct.pack_into("<QQQQQ", data, 0, MAGIC, LAYOUT, mode, threshold, bt_budget)
        temporary = "%s.tmp.%d" % (path, os.getpid())
        with open(temporary, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
        return cls(path)

    def get(self, field):
        return self.words[OFFSETS[field] // 8]

    def put(self, field, value):
        self.words[OFFSETS[field] // 8] = value

    def counters(self):
        return {name: self.get(name) for name in COUNTERS}

    def wait_ready(self, timeout=10.0, pid=None):
        """True once the shim in the (given) process has mapped the file."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get("ready") == 1 and (pid is None or self.get("pid") == pid):
                return True
            time.sleep(0.01)
        return False

    def set_mode(self, mode, threshold=None):
        if threshold is not None:
            self.put("threshold", threshold)
        self.put("mode", mode)

    def record_backtraces(self, count):
        """Mode 3: the next `count` allocations write a backtrace to the .bt file."""
        self.put("bt_budget", count)
        self.set_mode(BACKTRACE)

    def fail_all_recording(self, count):
        """Mode 4: fail every allocation; the first `count` failures write a backtrace."""
        self.put("bt_budget", count)
        self.set_mode(FAIL_ALL_RECORDING)

    def close(self):
        self.words.release()
        self.map.close()


def delta(before, after):
    return {name: after[name] - before[name] for name in before}


def backtrace_path(control_path):
    return control_path + ".bt"


def preload_environment(shim, control_path, base=None):
    env = dict(os.environ if base is None else base)
    env["LD_PRELOAD"] = shim
    env["NINEP_MALLOC_CONTROL"] = control_path
    env.pop("NINEP_MALLOC_BACKTRACES", None)
    return env


# -- symbolizing a backtrace file -------------------------------------------------------------

FRAME = re.compile(r"^(?P<module>[^(\[]*)(\((?P<symbol>[^)]*)\))? ?\[0x(?P<address>[0-9a-f]+)\]$")


def _parse_maps(lines):
    regions = []
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or not parts[5].startswith("/"):
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        regions.append((start, end, int(parts[2], 16), parts[5]))
    return regions


def _module_offset(regions, address):
    """(path, file offset) of an address, from the maps lines."""
    for start, end, offset, path in regions:
        if start <= address < end:
            return path, address - start + offset
    return None, None


def _file_offset_to_vaddr(path, cache):
    """Converts file offsets to the addresses symbolizers expect (via the PT_LOAD headers)."""
    if path in cache:
        return cache[path]
    segments = []
    try:
        output = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True, timeout=30).stdout
        for line in output.splitlines():
            parts = line.split()
            if parts and parts[0] == "LOAD":
                segments.append((int(parts[1], 16), int(parts[2], 16), int(parts[4], 16)))
    except (OSError, subprocess.SubprocessError):
        pass
    cache[path] = segments
    return segments


def _to_vaddr(segments, file_offset):
    for offset, vaddr, filesz in segments:
        if offset <= file_offset < offset + max(filesz, 1):
            return file_offset - offset + vaddr
    return file_offset


def _symbolizer():
    for candidate in ("llvm-symbolizer", "/opt/swift/usr/bin/llvm-symbolizer"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _demangle(lines):
    tool = shutil.which("swift-demangle") or shutil.which("/opt/swift/usr/bin/swift-demangle")
    if tool is None:
        return lines
    result = subprocess.run([tool, "--simplified"], input="\n".join(lines), capture_output=True, text=True, timeout=60)
    out = result.stdout.splitlines()
    return out if len(out) == len(lines) else lines


def symbolized_records(bt_file, max_frames=32):
    """[(header, [frame, ...])] with frames as "function  [module]  file:line"."""
    with open(bt_file, errors="replace") as f:
        raw = f.read().splitlines()
    regions = _parse_maps(l[5:] for l in raw if l.startswith("maps "))
    records, current = [], None
    for line in raw:
        if line.startswith("maps "):
            continue
        if line.startswith("=== "):
            current = [line, []]
            records.append(current)
        elif current is not None and len(current[1]) < max_frames:
            current[1].append(line)
    # Collect the frames to resolve, per module (return addresses minus one: the call).
    wanted = {}
    for _, frames in records:
        for frame in frames:
            m = FRAME.match(frame.strip())
            if m:
                path, offset = _module_offset(regions, int(m.group("address"), 16) - 1)
                if path:
                    wanted.setdefault(path, set()).add(offset)
    tool = _symbolizer()
    resolved, segment_cache = {}, {}
    for path, offsets in wanted.items():
        ordered = sorted(offsets)
        segments = _file_offset_to_vaddr(path, segment_cache)
        addresses = ["0x%x" % _to_vaddr(segments, o) for o in ordered]
        if tool:
            cmd = [tool, "--obj=" + path, "--functions=linkage", "--inlining=false", "--output-style=GNU"]
        else:
            cmd = ["addr2line", "-f", "-e", path]
        try:
            text = subprocess.run(cmd, input="\n".join(addresses), capture_output=True, text=True, timeout=300).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        lines = [l for l in text.splitlines() if l.strip() != ""]
        for i, offset in enumerate(ordered):
            if 2 * i + 1 < len(lines):
                resolved[(path, offset)] = (lines[2 * i], lines[2 * i + 1])
    names = sorted({v[0] for v in resolved.values()})
    demangled = dict(zip(names, _demangle(names)))
    result = []
    for header, frames in records:
        out_frames = []
        for frame in frames:
            m = FRAME.match(frame.strip())
            path, offset = (None, None)
            if m:
                path, offset = _module_offset(regions, int(m.group("address"), 16) - 1)
            if (path, offset) in resolved:
                function, where = resolved[(path, offset)]
                where = "" if where.startswith("??") else "  " + where
                name = demangled.get(function, function)
                if len(name) > 160:
                    name = name[:157] + "..."   # C++ template names from the Swift runtime
                out_frames.append("%s  [%s]%s" % (name, os.path.basename(path), where))
            else:
                out_frames.append(frame.strip())
        result.append((header, out_frames))
    return result


def symbolize(bt_file, out=sys.stdout, max_frames=24):
    for header, frames in symbolized_records(bt_file, max_frames):
        out.write(header + "\n")
        for frame in frames:
            out.write("    " + frame + "\n")


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    command, path = argv[1], argv[2]
    if command == "create":
        Control.create(path)
    elif command == "show":
        control = Control(path)
        fields = dict(control.counters(), mode=control.get("mode"), threshold=control.get("threshold"),
                      bt_budget=control.get("bt_budget"), pid=control.get("pid"), ready=control.get("ready"))
        for name, value in fields.items():
            print("%-12s %d" % (name, value))
    elif command == "mode":
        control = Control(path)
        mode = int(argv[3])
        argument = int(argv[4]) if len(argv) > 4 else None
        if mode == BACKTRACE:
            control.record_backtraces(argument if argument is not None else 20)
        elif mode == FAIL_ALL_RECORDING:
            control.fail_all_recording(argument if argument is not None else 20)
        else:
            control.set_mode(mode, argument)
    elif command == "symbolize":
        symbolize(path)
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
