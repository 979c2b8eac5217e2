import Glibc

/// The calling process's CPU affinity. Glibc declares `sched_setaffinity` only under _GNU_SOURCE,
/// which Swift's Glibc module does not define, so the function is looked up at run time.
///
/// Why pin at all: on a small VM a request/response between two processes that sit on different,
/// idle CPUs pays a cross-CPU wake-up whose cost swings between 10 and 60 µs from one second to
/// the next. With client and server on one CPU the hand-off is a plain context switch, and the
/// floor and ccached are measured under the same, repeatable conditions.
enum CPUAffinity {
    private typealias SetAffinity = @convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32

    /// Restricts this process (and what it spawns from now on) to `cpus`. False if that failed.
    @discardableResult
    static func restrict(to cpus: [Int]) -> Bool {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "sched_setaffinity") else {
            return false
        }
        let setAffinity = unsafeBitCast(symbol, to: SetAffinity.self)
        var set = cpu_set_t()
        let size = MemoryLayout<cpu_set_t>.size
        withUnsafeMutableBytes(of: &set) { bytes in
            for cpu in cpus where cpu >= 0 && cpu / 8 < size { bytes[cpu / 8] |= UInt8(1 << (cpu % 8)) }
        }
        return withUnsafeBytes(of: &set) { setAffinity(0, size, $0.baseAddress!) } == 0
    }

    /// Every online CPU.
    static var allCPUs: [Int] { Array(0..<max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
}
