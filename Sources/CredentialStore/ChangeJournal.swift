import KCM

/// A counter that grows by one with every change to the collection, and a bounded ring of the most
/// recent changes: what a watcher that last saw counter `c` has missed, or that it must resync.
///
/// A change names its kind and the cache, never a credential's bytes. Counters are only meaningful
/// together with ``epoch``, chosen at random when the journal is made, so a watcher notices that the
/// daemon restarted and its counter belongs to another life.
public struct ChangeJournal: Sendable {
    /// What happened to the collection: the kinds CCACHED_WATCH reports.
    public typealias Kind = KCMChangeEvent.Kind

    /// One change: its counter value, kind and cache, kept as the watch reply sends it.
    public typealias Change = KCMChangeEvent

    /// What happened since a counter.
    public enum Since: Hashable, Sendable {
        /// Every change after the counter, oldest first (empty when nothing changed).
        case changes([Change])
        /// The ring no longer reaches back that far, or the counter is from another epoch or
        /// ahead of this journal: the watcher must read the whole collection again.
        case resync
    }

    /// How many changes the ring keeps at most.
    public let capacity: Int
    /// Identifies this journal's life: counters from another epoch mean nothing here.
    public let epoch: UInt64
    /// The counter of the latest change; 0 before any.
    public private(set) var counter: UInt64 = 0
    private var ring: [Change] = []
    /// Where the oldest change sits once the ring is full.
    private var oldestSlot = 0

    /// A journal of at most `capacity` (≥ 1) changes; `epoch` (nil or 0) defaults to a random non-zero
    /// value: 0 is what a watcher sends when it knows no epoch yet.
    public init(capacity: Int = 256, epoch: UInt64? = nil) {
        self.capacity = max(1, capacity)
        var random = SystemRandomNumberGenerator()
        self.epoch = epoch.flatMap { $0 == 0 ? nil : $0 } ?? (random.next() | 1)
        ring.reserveCapacity(min(self.capacity, 64))
    }

    /// Records one change and returns its counter.
    @discardableResult
    public mutating func record(_ kind: Kind, _ cacheName: KCMCacheName) -> UInt64 {
        counter += 1
        let change = Change(counter: counter, kind: kind, cacheName: cacheName)
        if ring.count < capacity {
            ring.append(change)
        } else {
            ring[oldestSlot] = change
            oldestSlot = (oldestSlot + 1) % capacity
        }
        return counter
    }

    /// The counter of the oldest change still kept; `counter + 1` when none is.
    public var oldestCounter: UInt64 { ring.isEmpty ? counter + 1 : ring[oldestSlot].counter }

    /// The changes after `after` in `epoch` (the journal's own when nil), oldest first, at most
    /// `limit` of them (the rest follow on the next call), or ``Since/resync`` — always for epoch 0,
    /// which is how a new watcher learns the current counter.
    public func changes(after: UInt64, epoch: UInt64? = nil, limit: Int = .max) -> Since {
        if let epoch, epoch != self.epoch { return .resync }
        guard after <= counter else { return .resync }
        if after == counter { return .changes([]) }
        // Changes after..<counter must all be in the ring: the first one wanted is after + 1.
        guard after + 1 >= oldestCounter else { return .resync }
        let skip = Int(after + 1 - oldestCounter)
        let wanted = min(Int(counter - after), max(0, limit))
        var result: [Change] = []
        result.reserveCapacity(wanted)
        for index in skip..<skip + wanted { result.append(ring[(oldestSlot + index) % ring.count]) }
        return .changes(result)
    }
}

extension ChangeJournal {
    /// The CCACHED_WATCH reply for `request` now, or nil when nothing changed after `request.after`
    /// yet: the daemon then holds the request until ``counter`` moves or the timeout passes, and
    /// answers ``timeoutReply(for:)``. Epoch 0, a foreign epoch, a future counter and a counter the
    /// ring no longer reaches all answer *resync* at once.
    public func watchReply(for request: KCMWatch.Request, limit: Int = 256) -> KCMWatch.Reply? {
        guard request.epoch != 0 else { return KCMWatch.Reply(epoch: epoch, next: counter, resync: true) }
        switch changes(after: request.after, epoch: request.epoch, limit: limit) {
        case .resync:
            return KCMWatch.Reply(epoch: epoch, next: counter, resync: true)
        case .changes(let changes):
            guard let last = changes.last else { return nil }
            return KCMWatch.Reply(epoch: epoch, next: last.counter, events: changes)
        }
    }

    /// The reply when a watch request's timeout passed with no change: no events, `next = after`.
    public func timeoutReply(for request: KCMWatch.Request) -> KCMWatch.Reply {
        KCMWatch.Reply(epoch: epoch, next: request.after)
    }
}
