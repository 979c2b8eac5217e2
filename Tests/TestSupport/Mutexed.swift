import Foundation

/// A value shared by concurrent closures (or threads) in a test, behind a lock.
package final class Mutexed<Value>: @unchecked Sendable {
    // Safe: every access goes through `lock`.
    private let lock = NSLock()
    private var stored: Value

    /// A box holding `value`.
    package init(_ value: Value) { stored = value }

    /// A copy of the value, read under the lock.
    package var value: Value { lock.withLock { stored } }

    /// Changes the value under the lock.
    package func mutate(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }

    /// Appends to an array value under the lock.
    package func append<Element>(_ element: Element) where Value == [Element] {
        lock.withLock { stored.append(element) }
    }
}
