import Foundation
import Glibc
import SecureMemory
import Synchronization
import Testing

/// The file /proc/self/maps names for the mapping that holds `address` ("" for an anonymous one).
func mappingName(of address: UnsafeRawPointer) throws -> String {
    let target = UInt(bitPattern: address)
    let handle = try #require(FileHandle(forReadingAtPath: "/proc/self/maps"))
    defer { try? handle.close() }
    let maps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
    for line in maps.split(separator: "\n") {
        let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        let range = fields[0].split(separator: "-")
        guard let low = UInt(range[0], radix: 16), let high = UInt(range[1], radix: 16), low <= target, target < high
        else { continue }
        return fields.count > 5 ? String(fields[5]).trimmingCharacters(in: .whitespaces) : ""
    }
    return "(unmapped)"
}

/// Whether this kernel makes secret memory for this process (the arena's own probe, on an arena
/// that is then dropped).
let kernelHasSecretMemory = SecureArena().useSecretMemory() == nil

/// A stand-in for memfd_secret that makes an unlinked temporary file, so that a test of what follows
/// a refusal runs on any kernel.
@Sendable func temporaryFile() -> Int32 {
    var template = Array("/tmp/secure-arena-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    if fd >= 0 { template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) } }
    return fd
}

@Suite("secure arena, secret memory")
struct SecretBackingTests {
    @Test(
        "with secret memory, blocks live in memfd_secret mappings, locked, and are zeroed when freed",
        .enabled(if: kernelHasSecretMemory, "this kernel has no memfd_secret (secretmem.enable=1 before 6.5)"))
    func secretBlocks() throws {
        let arena = SecureArena()
        #expect(arena.useSecretMemory() == nil)
        #expect(arena.backing == .secret)
        let block = try #require(arena.allocate(100))
        memset(block, 0xA5, 100)
        #expect(try mappingName(of: block) == "/secretmem (deleted)")
        #expect(try vmFlags(of: block).contains("lo"))
        let statistics = arena.statistics
        #expect(statistics.backing == .secret)
        #expect(statistics.mappedBytes == 64 * 1024)
        #expect(statistics.lockedBytes == statistics.mappedBytes)
        arena.free(block, size: 100)
        #expect(UnsafeRawBufferPointer(start: block, count: 100).allSatisfy { $0 == 0 })
        #expect(arena.statistics.liveBlocks == 0)

        // A large block gets a secret file of its own, unmapped when freed.
        let large = try #require(arena.allocate(100_000))
        memset(large, 0x5A, 100_000)
        #expect(try mappingName(of: large) == "/secretmem (deleted)")
        arena.free(large, size: 100_000)
        #expect(try mappingName(of: large) != "/secretmem (deleted)")
        #expect(arena.statistics.mappedBytes == 64 * 1024)
        #expect(arena.statistics.lockedBytes == arena.statistics.mappedBytes)
    }

    @Test("a refused memfd_secret leaves the arena on locked anonymous memory, working")
    func refusedFallsBack() throws {
        let arena = SecureArena()
        let refusal = arena.useSecretMemory(create: {
            errno = ENOSYS
            return -1
        })
        #expect(refusal == ENOSYS)
        #expect(arena.backing == .anonymous)
        let block = try #require(arena.allocate(200))
        memset(block, 0x11, 200)
        #expect(try mappingName(of: block) == "")
        #expect(arena.statistics.backing == .anonymous)
        arena.free(block, size: 200)
        #expect(UnsafeRawBufferPointer(start: block, count: 200).allSatisfy { $0 == 0 })
    }

    @Test("a secret mapping the kernel refuses later is made anonymous instead, counted, reported once")
    func laterRefusalFallsBackToAnonymous() throws {
        let arena = SecureArena()
        let calls = Atomic<Int>(0)
        let reports = Atomic<Int>(0)
        let reported = Atomic<Int32>(0)
        arena.setLockFailureHandler { error, _ in
            reports.add(1, ordering: .relaxed)
            reported.store(error, ordering: .relaxed)
        }
        // The probe gets a file; every later mapping is refused as RLIMIT_MEMLOCK refuses it.
        #expect(
            arena.useSecretMemory(create: {
                guard calls.add(1, ordering: .relaxed).newValue == 1 else {
                    errno = EAGAIN
                    return -1
                }
                return temporaryFile()
            }) == nil)
        #expect(arena.backing == .secret)
        let small = try #require(arena.allocate(100))
        let large = try #require(arena.allocate(100_000))
        #expect(try mappingName(of: small) == "")
        #expect(try mappingName(of: large) == "")
        memset(small, 0x77, 100)
        #expect(reports.load(ordering: .relaxed) == 1)
        #expect(reported.load(ordering: .relaxed) == EAGAIN)
        #expect(arena.statistics.lockFailures == 2)
        #expect(arena.statistics.backing == .secret)
        arena.free(small, size: 100)
        #expect(UnsafeRawBufferPointer(start: small, count: 100).allSatisfy { $0 == 0 })
        arena.free(large, size: 100_000)
        #expect(arena.statistics.liveBlocks == 0)
    }
}
