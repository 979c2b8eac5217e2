import CCacheDoor
import Foundation
import Synchronization
import Testing

@Suite("StartGate: one daemon start per (uid, session)")
struct StartGateTests {
    @Test("threads with the same key never run together; the table is empty afterwards")
    func exclusive() throws {
        let gate = StartGate()
        let inside = Atomic<Int>(0)
        let most = Atomic<Int>(0)
        let key = StartGate.Key(uid: 1000, session: "3")
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            let ran = try? gate.withKey(key, deadline: Int64.max) { () throws(DoorError) -> Bool in
                let now = inside.add(1, ordering: .relaxed).newValue
                most.max(now, ordering: .relaxed)
                usleep(2_000)
                inside.subtract(1, ordering: .relaxed)
                return true
            }
            #expect(ran == true)
        }
        #expect(most.load(ordering: .relaxed) == 1)
        #expect(gate.count == 0)
    }

    @Test("a key held by another thread past the deadline gives nil, another key is free")
    func deadline() throws {
        let gate = StartGate()
        let key = StartGate.Key(uid: 1000, session: "user")
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = try? gate.withKey(key, deadline: Int64.max) { () throws(DoorError) -> Void in
                holding.signal()
                release.wait()
            }
            done.signal()
        }
        holding.wait()
        let blocked = try gate.withKey(key, deadline: 0) { () throws(DoorError) -> Bool in true }
        #expect(blocked == nil)
        let other = try gate.withKey(StartGate.Key(uid: 1001, session: "user"), deadline: 0) {
            () throws(DoorError) -> Bool in true
        }
        #expect(other == true)
        release.signal()
        done.wait()
        #expect(gate.count == 0)
    }
}
