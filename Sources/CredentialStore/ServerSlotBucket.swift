/// The slots that share one server-index key, in ascending order.
///
/// Nearly every key has exactly one slot (a cache holds one ticket per service), so that case is
/// kept inline in the index's dictionary value; only a key with several slots gets an array. An
/// array of its own per credential cost about 50 bytes of heap per stored ticket.
enum ServerSlotBucket: RandomAccessCollection {
    case one(Int)
    case many([Int])

    var startIndex: Int { 0 }

    var endIndex: Int {
        switch self {
        case .one: 1
        case .many(let slots): slots.count
        }
    }

    subscript(position: Int) -> Int {
        switch self {
        case .one(let slot): slot
        case .many(let slots): slots[position]
        }
    }

    /// This bucket with `slot` appended (slots are appended in ascending order).
    func appending(_ slot: Int) -> ServerSlotBucket {
        switch self {
        case .one(let first):
            return .many([first, slot])
        case .many(var slots):
            slots.append(slot)
            return .many(slots)
        }
    }

    /// This bucket without `slot`, or nil when nothing is left.
    func removing(_ slot: Int) -> ServerSlotBucket? {
        switch self {
        case .one(let only): return only == slot ? nil : self
        case .many(var slots):
            if let position = slots.firstIndex(of: slot) { slots.remove(at: position) }
            switch slots.count {
            case 0: return nil
            case 1: return .one(slots[0])
            default: return .many(slots)
            }
        }
    }
}
