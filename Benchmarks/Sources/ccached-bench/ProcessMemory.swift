import Glibc

/// A process's memory as the kernel reports it, in bytes.
struct ProcessMemory {
    /// `VmRSS` from /proc/PID/status: resident pages, shared ones included.
    let residentBytes: Int
    /// Private_Clean + Private_Dirty from /proc/PID/smaps_rollup: what this process alone costs.
    let privateBytes: Int
    /// Private_Dirty alone: what it wrote (the soak's measure of memory not given back).
    let privateDirtyBytes: Int

    static func of(_ pid: pid_t) -> ProcessMemory? {
        guard let status = readText("/proc/\(pid)/status"), let rollup = readText("/proc/\(pid)/smaps_rollup") else {
            return nil
        }
        let rss = kilobytes(named: "VmRSS:", in: status)
        let privateClean = kilobytes(named: "Private_Clean:", in: rollup)
        let privateDirty = kilobytes(named: "Private_Dirty:", in: rollup)
        return ProcessMemory(
            residentBytes: rss * 1024, privateBytes: (privateClean + privateDirty) * 1024,
            privateDirtyBytes: privateDirty * 1024)
    }

    private static func kilobytes(named field: String, in text: String) -> Int {
        for line in text.split(separator: "\n") where line.hasPrefix(field) {
            let number = line.dropFirst(field.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? ""
            return Int(number) ?? 0
        }
        return 0
    }

    static func readText(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { break }
            data += chunk[0..<count]
        }
        return String(decoding: data, as: UTF8.self)
    }
}
