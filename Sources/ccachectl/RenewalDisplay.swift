import KCM

/// How `list` and `status` show renewal (CCACHED_RENEWAL_STATE).
enum RenewalDisplay {
    /// `renewal: next 17:44:43, last 11:04:43`, `renewal: failed 3 times, last error: …`, or the
    /// note (`renewal: renewable lifetime reached`).
    static func line(_ state: KCMRenewalState.Cache) -> String {
        var parts: [String] = []
        if state.consecutiveFailures > 0 {
            let times = state.consecutiveFailures == 1 ? "once" : "\(state.consecutiveFailures) times"
            parts.append("failed \(times)")
        }
        if state.nextDue != 0 { parts.append("next \(Display.time(UInt32(clamping: state.nextDue)))") }
        if state.lastRenewal != 0 { parts.append("last \(Display.time(UInt32(clamping: state.lastRenewal)))") }
        if !state.note.isEmpty { parts.append(state.note) }
        if !state.lastError.isEmpty { parts.append("last error: \(state.lastError)") }
        return "renewal: " + (parts.isEmpty ? "nothing due" : parts.joined(separator: ", "))
    }

    /// `on, idle, 14 renewed, 2 failed since start` or `off (--no-renew), …`.
    static func worker(_ worker: KCMRenewalState.Worker) -> String {
        var parts = [worker.enabled ? "on" : "off (--no-renew)"]
        parts.append(worker.busy ? "renewing now" : "idle")
        if worker.queued > 0 { parts.append("\(worker.queued) queued") }
        parts.append("\(worker.renewed) renewed, \(worker.failed) failed since start")
        return parts.joined(separator: ", ")
    }
}

/// A cache's renewal in `list --json`: `{"error": null, "failures": 0, "last": null, "next":
/// 1796155483, "note": null}` (Unix seconds; null where there is none).
struct RenewalJSON: Encodable {
    @NullWhenAbsent var next: UInt64?
    @NullWhenAbsent var last: UInt64?
    var failures: UInt32
    @NullWhenAbsent var error: String?
    @NullWhenAbsent var note: String?

    init(_ state: KCMRenewalState.Cache) {
        next = state.nextDue == 0 ? nil : state.nextDue
        last = state.lastRenewal == 0 ? nil : state.lastRenewal
        failures = state.consecutiveFailures
        error = state.lastError.isEmpty ? nil : state.lastError
        note = state.note.isEmpty ? nil : state.note
    }
}
