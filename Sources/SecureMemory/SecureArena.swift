import CSecretMemory
import Glibc
import Synchronization

/// Where secret bytes live: anonymous mappings that are locked in RAM when the memlock limit allows
/// it, excluded from core dumps (`MADV_DONTDUMP`), and overwritten with zeros when a block is freed.
/// Or, when chosen before the first allocation (``useSecretMemory(create:)``), `memfd_secret`
/// mappings: locked by the kernel and absent from its direct map (``Backing/secret``).
///
/// Blocks come from size classes carved out of slabs (64-byte steps up to 4 KiB, then 4 KiB steps up
/// to 64 KiB), so a typical credential wastes under 64 bytes; larger blocks get a mapping of their own
/// that is zeroed and unmapped when freed. Slabs are kept for reuse, never returned to the kernel.
///
/// Thread-safe: blocks are allocated and freed under one mutex, from any thread.
public final class SecureArena: Sendable {
    /// The process's arena (the daemon's credential bytes, the client's copies of them).
    public static let shared = SecureArena()

    /// Called once, the first time a mapping cannot be locked in RAM (with `errno` and the
    /// `RLIMIT_MEMLOCK` soft limit in bytes, or nil when unlimited); later failures are only counted.
    public typealias LockFailureHandler = @Sendable (_ errno: Int32, _ memlockLimit: UInt64?) -> Void

    /// Makes a secret memory file: a descriptor, or -1 with `errno` set.
    public typealias SecretMemoryCreator = @Sendable () -> Int32

    /// `memfd_secret(O_CLOEXEC)`.
    public static let memfdSecret: SecretMemoryCreator = { ccached_memfd_secret() }

    /// What the mappings that hold the blocks are.
    public enum Backing: UInt32, Sendable {
        /// Private anonymous mappings, `mlock`ed when `RLIMIT_MEMLOCK` allows, `MADV_DONTDUMP`,
        /// `MADV_WIPEONFORK` (the default).
        case anonymous = 0
        /// One `memfd_secret` file per mapping, mapped shared and closed: the kernel locks the pages
        /// (charging `RLIMIT_MEMLOCK` for the whole mapping when it is made) and removes them from
        /// its direct map, so neither it nor another process (not even root through /proc/PID/mem)
        /// reads them. A mapping the limit refuses is made anonymous instead (and counted in
        /// ``Statistics/lockFailures``).
        case secret = 1
    }

    /// What the arena holds now.
    public struct Statistics: Sendable, Equatable {
        /// Which memory holds the blocks.
        public var backing: Backing = .anonymous
        /// Bytes handed out in live blocks (rounded up to their size class).
        public var liveBytes: Int = 0
        public var liveBlocks: Int = 0
        /// Bytes mapped for blocks, in use or free.
        public var mappedBytes: Int = 0
        /// Of those, the bytes locked in RAM.
        public var lockedBytes: Int = 0
        /// How many mappings could not be locked (anonymous backing), or could not be made in secret
        /// memory and are anonymous instead (secret backing).
        public var lockFailures: Int = 0

        public init(
            liveBytes: Int = 0, liveBlocks: Int = 0, mappedBytes: Int = 0, lockedBytes: Int = 0, lockFailures: Int = 0
        ) {
            self.liveBytes = liveBytes
            self.liveBlocks = liveBlocks
            self.mappedBytes = mappedBytes
            self.lockedBytes = lockedBytes
            self.lockFailures = lockFailures
        }
    }

    static let smallStep = 64
    static let smallLimit = 4096
    static let mediumStep = 4096
    static let mediumLimit = 65536
    static let smallSlabSize = 64 * 1024
    static let mediumSlabSize = 256 * 1024

    private struct SizeClass {
        /// Addresses of freed blocks (kept as integers: the state crosses threads, raw pointers may not).
        var free: [UInt] = []
        /// The unused tail of the newest slab.
        var next: UInt = 0
        var left = 0
    }

    private struct State: ~Copyable {
        var classes: [SizeClass]
        var slabs: [(base: UInt, size: Int)] = []
        /// Dedicated mappings of large blocks: their mapped size and whether they are locked.
        var large: [UInt: (size: Int, locked: Bool)] = [:]
        var statistics = Statistics()
        var lockFailureHandler: LockFailureHandler?
        var lockFailureReported = false
        /// Set for the secret backing.
        var secretCreator: SecretMemoryCreator?
    }

    private let state: Mutex<State>

    public init() {
        let count = Self.smallLimit / Self.smallStep + (Self.mediumLimit - Self.smallLimit) / Self.mediumStep
        state = Mutex(State(classes: Array(repeating: SizeClass(), count: count)))
    }

    /// Installs the handler told about the first mapping that could not be locked.
    public func setLockFailureHandler(_ handler: @escaping LockFailureHandler) {
        state.withLock { $0.lockFailureHandler = handler }
    }

    public var statistics: Statistics { state.withLock { $0.statistics } }

    /// Which memory holds the blocks.
    public var backing: Backing { statistics.backing }

    /// Holds every block from now on in secret memory: `memfd_secret` files made by `create` (the
    /// system call; tests inject a failure). Called once, before the first allocation. Tries one
    /// page first (made, sized, mapped and unmapped) and returns its `errno` if any step failed —
    /// ENOSYS: the kernel lacks it or it is off (`secretmem.enable=1` before 6.5); EAGAIN or ENOMEM:
    /// `RLIMIT_MEMLOCK` — leaving the backing anonymous; nil once the backing is secret.
    public func useSecretMemory(create: @escaping SecretMemoryCreator = SecureArena.memfdSecret) -> Int32? {
        state.withLock { state -> Int32? in
            precondition(state.statistics.mappedBytes == 0, "the arena's backing is chosen before it maps anything")
            let page = Self.roundToPages(1)
            let fd = create()
            guard fd >= 0 else { return errno }
            defer { close(fd) }
            guard ftruncate(fd, off_t(page)) == 0 else { return errno }
            guard let probe = mmap(nil, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), probe != MAP_FAILED else {
                return errno
            }
            munmap(probe, page)
            state.secretCreator = create
            state.statistics.backing = .secret
            return nil
        }
    }

    /// The size class of a request: its index and block size, or nil for a dedicated mapping.
    static func sizeClass(for size: Int) -> (index: Int, blockSize: Int)? {
        if size <= smallLimit {
            let steps = max(1, (size + smallStep - 1) / smallStep)
            return (steps - 1, steps * smallStep)
        }
        if size <= mediumLimit {
            let steps = (size + mediumStep - 1) / mediumStep
            return (smallLimit / smallStep + steps - 2, steps * mediumStep)
        }
        return nil
    }

    /// A block of at least `size` bytes (size > 0), or nil when the kernel refuses the memory.
    public func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        precondition(size > 0, "empty secure blocks are never allocated")
        var failure: (errno: Int32, handler: LockFailureHandler)?
        let address: UInt? = state.withLock { state -> UInt? in
            guard let (index, blockSize) = Self.sizeClass(for: size) else {
                let mapped = Self.roundToPages(size)
                guard let (base, locked) = Self.map(mapped, into: &state, failure: &failure) else { return nil }
                state.large[base] = (mapped, locked)
                state.statistics.liveBytes += mapped
                state.statistics.liveBlocks += 1
                return base
            }
            if let reused = state.classes[index].free.popLast() {
                state.statistics.liveBytes += blockSize
                state.statistics.liveBlocks += 1
                return reused
            }
            if state.classes[index].left < blockSize {
                let slabSize = blockSize <= Self.smallLimit ? Self.smallSlabSize : Self.mediumSlabSize
                guard let (slab, _) = Self.map(slabSize, into: &state, failure: &failure) else { return nil }
                state.slabs.append((slab, slabSize))
                state.classes[index].next = slab
                state.classes[index].left = slabSize
            }
            let base = state.classes[index].next
            state.classes[index].next = base + UInt(blockSize)
            state.classes[index].left -= blockSize
            state.statistics.liveBytes += blockSize
            state.statistics.liveBlocks += 1
            return base
        }
        if let failure { failure.handler(failure.errno, Self.memlockLimit) }
        return address.flatMap { UnsafeMutableRawPointer(bitPattern: $0) }
    }

    /// Zeroes a block from ``allocate(_:)`` of the same `size` and takes it back.
    public func free(_ block: UnsafeMutableRawPointer, size: Int) {
        Self.wipe(block, count: size)
        let address = UInt(bitPattern: block)
        state.withLock { state in
            guard let (index, blockSize) = Self.sizeClass(for: size) else {
                guard let mapping = state.large.removeValue(forKey: address) else {
                    preconditionFailure("a large secure block freed twice or never allocated")
                }
                state.statistics.liveBytes -= mapping.size
                state.statistics.liveBlocks -= 1
                state.statistics.mappedBytes -= mapping.size
                if mapping.locked { state.statistics.lockedBytes -= mapping.size }
                munmap(UnsafeMutableRawPointer(bitPattern: address), mapping.size)
                return
            }
            state.classes[index].free.append(address)
            state.statistics.liveBytes -= blockSize
            state.statistics.liveBlocks -= 1
        }
    }

    /// Zeroes every block, live or free: for the daemon's last moment, after its store was emptied,
    /// so that nothing another reference still held survives.
    public func wipeEverything() {
        state.withLock { state in
            for slab in state.slabs { Self.wipe(UnsafeMutableRawPointer(bitPattern: slab.base)!, count: slab.size) }
            for (base, mapping) in state.large {
                Self.wipe(UnsafeMutableRawPointer(bitPattern: base)!, count: mapping.size)
            }
        }
    }

    /// The process's soft `RLIMIT_MEMLOCK` in bytes, or nil when unlimited.
    public static var memlockLimit: UInt64? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max
        else {
            return nil
        }
        return UInt64(limit.rlim_cur)
    }

    /// Overwrites `count` bytes with zeros in a way the compiler may not elide.
    public static func wipe(_ pointer: UnsafeMutableRawPointer, count: Int) {
        guard count > 0 else { return }
        explicit_bzero(pointer, count)
    }

    private static func roundToPages(_ size: Int) -> Int {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        return (size + page - 1) / page * page
    }

    /// Maps, locks (when allowed) and marks a new region; records a lock failure for reporting.
    private static func map(
        _ size: Int, into state: inout State, failure: inout (errno: Int32, handler: LockFailureHandler)?
    ) -> (base: UInt, locked: Bool)? {
        var secretRefused = false
        if let create = state.secretCreator {
            if let base = mapSecret(size, create: create) {
                state.statistics.mappedBytes += size
                state.statistics.lockedBytes += size
                return (UInt(bitPattern: base), true)
            }
            // Past RLIMIT_MEMLOCK: anonymous memory (unlocked, as the limit is reached) rather than a
            // refused credential — the store has no way to refuse one for memory (SecureBytes traps).
            noteFailure(errno, in: &state, failure: &failure)
            secretRefused = true
        }
        guard let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            base != MAP_FAILED
        else { return nil }
        _ = madvise(base, size, MADV_DONTDUMP)
        // Children never inherit a copy (the daemon does not fork; this is for any future caller).
        _ = madvise(base, size, MADV_WIPEONFORK)
        state.statistics.mappedBytes += size
        if mlock(base, size) == 0 {
            state.statistics.lockedBytes += size
            return (UInt(bitPattern: base), true)
        }
        // A mapping secret memory refused is counted once, not again for its lock.
        if !secretRefused { noteFailure(errno, in: &state, failure: &failure) }
        return (UInt(bitPattern: base), false)
    }

    /// Counts a mapping not locked (or, secret, not made); the first one is reported.
    private static func noteFailure(
        _ error: Int32, in state: inout State, failure: inout (errno: Int32, handler: LockFailureHandler)?
    ) {
        state.statistics.lockFailures += 1
        if !state.lockFailureReported, let handler = state.lockFailureHandler {
            state.lockFailureReported = true
            failure = (error, handler)
        }
    }

    /// A new secret memory file of `size` bytes, mapped shared; its descriptor is closed (the mapping
    /// keeps the file). Nil with `errno` when a step fails.
    private static func mapSecret(_ size: Int, create: SecretMemoryCreator) -> UnsafeMutableRawPointer? {
        let fd = create()
        guard fd >= 0 else { return nil }
        defer {
            let error = errno
            close(fd)
            errno = error
        }
        guard ftruncate(fd, off_t(size)) == 0,
            let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED
        else { return nil }
        // The kernel already keeps these pages out of core dumps; a child would share them, so it gets none.
        _ = madvise(base, size, MADV_DONTDUMP)
        _ = madvise(base, size, MADV_DONTFORK)
        return base
    }
}
