import CredentialStore
import KCM
import TestSupport
import Testing

/// ``UUIDGenerator`` never issues the all-zero UUID and never repeats one.
@Suite("UUIDGenerator")
struct UUIDGeneratorTests {
    @Test("100,000 draws: no zero, no repeat")
    func unique() {
        var generator = UUIDGenerator()
        var seen = Set<KCMUUID>(minimumCapacity: 100_000)
        var zero = 0
        for _ in 0..<100_000 {
            let uuid = generator.next()
            if uuid.high == 0 && uuid.low == 0 { zero += 1 }
            seen.insert(uuid)
        }
        #expect(zero == 0)
        #expect(seen.count == 100_000)
    }

    @Test("two generators do not issue the same UUIDs")
    func independent() {
        var a = UUIDGenerator()
        var b = UUIDGenerator()
        let first = Set((0..<1000).map { _ in a.next() })
        let second = Set((0..<1000).map { _ in b.next() })
        #expect(first.isDisjoint(with: second))
    }
}
