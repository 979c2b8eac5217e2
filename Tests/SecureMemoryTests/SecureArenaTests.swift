import Foundation
import Glibc
import SecureMemory
import Synchronization
import Testing

/// The VmFlags of the mapping that holds `address`, from /proc/self/smaps.
func vmFlags(of address: UnsafeRawPointer) throws -> [Substring] {
    let target = UInt(bitPattern: address)
    // Read to the end by hand: Foundation stops after the first read of a /proc file.
    let handle = try #require(FileHandle(forReadingAtPath: "/proc/self/smaps"))
    defer { try? handle.close() }
    let smaps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
    var inside = false
    for line in smaps.split(separator: "\n") {
        if let dash = line.firstIndex(of: "-"), let space = line.firstIndex(of: " "), dash < space,
            let low = UInt(line[..<dash], radix: 16), let high = UInt(line[line.index(after: dash)..<space], radix: 16)
        {
            inside = low <= target && target < high
        } else if inside, line.hasPrefix("VmFlags:") {
            return line.dropFirst("VmFlags:".count).split(separator: " ")
        }
    }
    return []
}

@Suite("secure arena")
struct SecureArenaTests {
    @Test("blocks are rounded to 64-byte steps up to 4 KiB and 4 KiB steps up to 64 KiB")
    func sizeClasses() throws {
        let arena = SecureArena()
        for (size, rounded) in [(1, 64), (64, 64), (65, 128), (1300, 1344), (4096, 4096), (4097, 8192), (65536, 65536)]
        {
            let block = try #require(arena.allocate(size))
            #expect(arena.statistics.liveBytes == rounded, "size \(size)")
            arena.free(block, size: size)
            #expect(arena.statistics.liveBytes == 0)
            #expect(arena.statistics.liveBlocks == 0)
        }
    }

    @Test("a freed block is zeroed and handed out again")
    func freedBlocksAreZeroedAndReused() throws {
        let arena = SecureArena()
        let block = try #require(arena.allocate(100))
        memset(block, 0xA5, 100)
        arena.free(block, size: 100)
        // Still mapped (slabs are kept), so its bytes can be checked.
        let bytes = UnsafeRawBufferPointer(start: block, count: 100)
        #expect(bytes.allSatisfy { $0 == 0 })
        let again = try #require(arena.allocate(90))
        #expect(again == block)
        arena.free(again, size: 90)
    }

    @Test("neighbouring blocks of one class do not overlap")
    func blocksDoNotOverlap() throws {
        let arena = SecureArena()
        var blocks: [UnsafeMutableRawPointer] = []
        for index in 0..<200 {
            let block = try #require(arena.allocate(1000))
            memset(block, Int32(index % 256), 1000)
            blocks.append(block)
        }
        for (index, block) in blocks.enumerated() {
            #expect(UnsafeRawBufferPointer(start: block, count: 1000).allSatisfy { $0 == UInt8(index % 256) })
        }
        for block in blocks { arena.free(block, size: 1000) }
        #expect(arena.statistics.liveBlocks == 0)
    }

    @Test("a large block gets its own mapping, unmapped when freed")
    func largeBlocks() throws {
        let arena = SecureArena()
        let size = 200_000
        let block = try #require(arena.allocate(size))
        memset(block, 0x5A, size)
        #expect(arena.statistics.mappedBytes >= size)
        arena.free(block, size: size)
        #expect(arena.statistics.mappedBytes == 0)
        #expect(arena.statistics.liveBytes == 0)
    }

    @Test("mappings are excluded from core dumps, and locked when the memlock limit allows")
    func mappingsAreMarked() throws {
        let arena = SecureArena()
        let block = try #require(arena.allocate(500))
        defer { arena.free(block, size: 500) }
        let flags = try vmFlags(of: block)
        #expect(flags.contains("dd"), "MADV_DONTDUMP missing: \(flags)")
        let statistics = arena.statistics
        if statistics.lockFailures == 0 {
            #expect(flags.contains("lo"), "mlock reported success but the mapping is not locked: \(flags)")
            #expect(statistics.lockedBytes == statistics.mappedBytes)
        } else {
            #expect(!flags.contains("lo"))
        }
    }

    @Test("the lock-failure handler is told once, and allocation goes on unlocked")
    func lockFailureFallsBack() throws {
        // Root may lock regardless of RLIMIT_MEMLOCK (CAP_IPC_LOCK): force a failure with a mapping
        // larger than any limit we set for non-root, and skip the check when root locks it anyway.
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue), &limit)
        let arena = SecureArena()
        let calls = Mutex(0)
        arena.setLockFailureHandler { _, _ in calls.withLock { $0 += 1 } }
        let size = limit.rlim_cur == rlim_t.max ? 64 << 20 : Int(limit.rlim_cur) + (1 << 20)
        let first = try #require(arena.allocate(size))
        let second = try #require(arena.allocate(size))
        memset(first, 1, size)
        memset(second, 2, size)
        let failures = arena.statistics.lockFailures
        arena.free(first, size: size)
        arena.free(second, size: size)
        if failures == 0 {
            // Locking was allowed (root, or an unlimited memlock limit): nothing to fall back from.
            #expect(calls.withLock { $0 } == 0)
        } else {
            #expect(failures == 2)
            #expect(calls.withLock { $0 } == 1)
        }
    }
}

@Suite("secure bytes")
struct SecureBytesTests {
    @Test("holds a copy of the bytes; slices, equality and hashing work on them")
    func copiesAndCompares() {
        let source: [UInt8] = Array(0..<200)
        let bytes = SecureBytes(copying: source)
        #expect(Array(bytes) == source)
        #expect(bytes.count == 200)
        #expect(Array(bytes[10..<20]) == Array(source[10..<20]))
        #expect(bytes[10..<20].bytesEqual(source[10..<20]))
        #expect(!bytes[10..<20].bytesEqual(source[11..<21]))
        #expect(!bytes[10..<20].bytesEqual(source[10..<19]))
        #expect(bytes == SecureBytes(copying: source[...]))
        #expect(bytes != SecureBytes(copying: source.dropLast()))
        #expect(bytes.hashValue == SecureBytes(copying: source).hashValue)
        #expect(SecureBytes(copying: [UInt8]()).isEmpty)
        #expect(SecureBytes() == SecureBytes(copying: [UInt8]()))
        // A collection without contiguous storage is copied byte by byte.
        let lazy = source.lazy.map { $0 ^ 0xFF }
        #expect(Array(SecureBytes(copying: lazy)) == source.map { $0 ^ 0xFF })
    }

    @Test("the block is zeroed and returned when the last copy goes away")
    func wipedOnRelease() throws {
        let arena = SecureArena()
        var address: UnsafeRawPointer?
        do {
            let secret = SecureBytes(copying: Array(repeating: 0xC3 as UInt8, count: 300), arena: arena)
            let copy = secret
            address = copy.withUnsafeBytes { $0.baseAddress }
            #expect(arena.statistics.liveBlocks == 1)
            #expect(secret == copy)
        }
        #expect(arena.statistics.liveBlocks == 0)
        let released = UnsafeRawBufferPointer(start: try #require(address), count: 300)
        #expect(released.allSatisfy { $0 == 0 })
    }

    @Test("wipeStorage zeroes an array's storage in place, from an offset")
    func arrayWipe() {
        var buffer: [UInt8] = Array(repeating: 7, count: 64)
        buffer.wipeStorage(from: 60)
        #expect(buffer.prefix(60).allSatisfy { $0 == 7 } && buffer.suffix(4).allSatisfy { $0 == 0 })
        buffer.wipeStorage()
        #expect(buffer.allSatisfy { $0 == 0 })
        buffer = []
        buffer.wipeStorage()
    }
}
