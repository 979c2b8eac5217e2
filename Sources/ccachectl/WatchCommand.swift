import ArgumentParser
import CCacheClient
import Glibc
import KCM

extension CCacheCtl {
    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "watch",
            abstract:
                "Print one line per change to the caches (created, destroyed, default, stored, removed, renewed, purged) "
                + "until interrupted.",
            discussion: """
                Each line is the local time, the kind of change and the cache: '11:04:43 renewed 1000'. \
                With --json, one object per line: {"cache":"1000","counter":3,"kind":"renewed", \
                "time":1796119483}. A 'resync' line means changes were missed (the daemon restarted, or more than \
                256 happened at once): read the caches again. Watching costs the daemon a sleeping \
                connection, no polling; programs can use CCacheContext.watchChanges instead.
                """)

        @Flag(name: .long, help: "Print JSON lines for scripts.")
        var json = false

        func run() throws {
            let context = try openContext()
            var started = false
            try reporting {
                try context.watchChanges { reply in
                    defer { started = true }
                    let now = UInt32(clamping: time(nil))
                    if reply.resync {
                        // The first reply is always a resync: it only tells where to start.
                        if started {
                            emit(Self.line(kind: "resync", cache: nil, counter: reply.next, now: now, json: json))
                        }
                        return true
                    }
                    for event in reply.events {
                        emit(
                            Self.line(
                                kind: event.kind.description, cache: event.cacheName.description,
                                counter: event.counter, now: now, json: json))
                    }
                    return true
                }
            }
        }

        /// Writes the line at once (no stdio buffer): a pipe reader sees each change as it happens.
        private func emit(_ line: String) {
            let bytes = Array((line + "\n").utf8)
            _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        }

        static func line(kind: String, cache: String?, counter: UInt64, now: UInt32, json: Bool) -> String {
            if json { return JSONOutput.line(Change(counter: counter, kind: kind, cache: cache, time: now)) }
            let clock = String(Display.time(now).suffix(8))
            return [clock, kind, cache].compactMap { $0 }.joined(separator: " ")
        }

        /// One `watch --json` line.
        private struct Change: Encodable {
            var counter: UInt64
            var kind: String
            @NullWhenAbsent var cache: String?
            var time: UInt32
        }
    }
}
