import Glibc

/// The machine a run happened on, for the report.
struct MachineDescription {
    let processors: Int
    let cpuModel: String
    let kernel: String

    static func current() -> MachineDescription {
        var model = "unknown"
        if let cpuinfo = ProcessMemory.readText("/proc/cpuinfo") {
            for line in cpuinfo.split(separator: "\n") where line.hasPrefix("model name") {
                if let colon = line.firstIndex(of: ":") {
                    model = line[line.index(after: colon)...].trimmingPrefix(" ").description
                }
                break
            }
        }
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let system = withUnsafeBytes(of: &names.sysname) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return MachineDescription(
            processors: sysconf(Int32(_SC_NPROCESSORS_ONLN)), cpuModel: model, kernel: "\(system) \(release)")
    }
}
