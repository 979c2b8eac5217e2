import CSupport
import Glibc

/// The real systemd-logind, asked through libsystemd's sd-login (loaded on first use; without
/// logind every answer is "no session", and the rule falls through to the per-user daemon).
public struct SystemLogind: LoginDirectory, Sendable {
    public init() {}

    public func session(_ id: String) -> LogindSession? {
        // logind keeps each session it knows in /run/systemd/sessions/ID, which is all sd-login reads:
        // without that file libsystemd need not even be loaded.
        guard SessionIdentity.isSafeComponent(id), access("/run/systemd/sessions/" + id, F_OK) == 0 else {
            return nil
        }
        var uid: uid_t = 0
        guard ccached_sd_session_get_uid(id, &uid) >= 0 else { return nil }
        guard let sessionClass = Self.string({ ccached_sd_session_get_class(id, $0) }),
            let state = Self.string({ ccached_sd_session_get_state(id, $0) })
        else { return nil }
        let type = Self.string({ ccached_sd_session_get_type(id, $0) }) ?? "unspecified"
        return LogindSession(id: id, uid: uid, sessionClass: sessionClass, state: state, type: type)
    }

    public func sessions(ofUser uid: UInt32) -> [String] {
        guard access("/run/systemd/users/\(uid)", F_OK) == 0 else { return [] }
        var list: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = ccached_sd_uid_get_sessions(uid, 0, &list)
        guard count > 0, let list else { return [] }
        defer { free(list) }
        var ids: [String] = []
        var index = 0
        while let entry = list[index] {
            ids.append(String(cString: entry))
            free(entry)
            index += 1
        }
        return ids
    }

    public func display(ofUser uid: UInt32) -> String? {
        guard access("/run/systemd/users/\(uid)", F_OK) == 0 else { return nil }
        return Self.string { ccached_sd_uid_get_display(uid, $0) }
    }

    /// A string that an sd-login call allocates, freed here.
    private static func string(_ call: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32) -> String? {
        var value: UnsafeMutablePointer<CChar>?
        guard call(&value) >= 0, let value else { return nil }
        defer { free(value) }
        return String(cString: value)
    }
}

/// What `/proc/PID` says about a process, as read: the three files the routing rule's facts come
/// from. ccached-door keys its routing cache by them, and routes by them, so what it remembers is
/// exactly what it decided from.
public struct ProcessRecord: Hashable, Sendable {
    public let cgroup: String
    public let sessionID: String
    public let loginUID: String

    /// Reads `/proc/PID/cgroup`, `sessionid` and `loginuid` (pid 0: this process), each in one
    /// read; nil when one cannot be read whole.
    ///
    /// The answer is about whatever process has that pid *now*: a caller that got the pid from a
    /// socket must confirm afterwards that the same process still holds it (ccached-door does so
    /// through the peer's pidfd).
    public static func read(pid: Int32) -> ProcessRecord? {
        guard pid >= 0 else { return nil }
        let directory = pid == 0 ? "/proc/self/" : "/proc/\(pid)/"
        guard let cgroup = readWholeFile(directory + "cgroup", limit: 16384),
            let sessionID = readWholeFile(directory + "sessionid", limit: 32),
            let loginUID = readWholeFile(directory + "loginuid", limit: 32)
        else { return nil }
        return ProcessRecord(cgroup: cgroup, sessionID: sessionID, loginUID: loginUID)
    }

    /// A small file read in one read; nil when unreadable or not smaller than `limit`.
    private static func readWholeFile(_ path: String, limit: Int) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: limit) { buffer -> String? in
            let count = Glibc.read(fd, buffer.baseAddress, limit)
            guard count >= 0, count < limit else { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<count]), as: UTF8.self)
        }
    }
}

extension PeerProcess {
    /// What the kernel says about process `pid` (0: this process) of user `uid`, from
    /// ``ProcessRecord/read(pid:)``; a process this one cannot read reads as ``unseen``.
    public static func read(pid: Int32, uid: UInt32) -> PeerProcess {
        ProcessRecord.read(pid: pid).map { PeerProcess(record: $0, uid: uid) } ?? .unseen
    }

    /// The facts of a process of user `uid` from what `/proc` said: its logind session scope, its
    /// audit session and login uid (nil when unset), and whether its cgroup lies under
    /// `user@UID.service`.
    public init(record: ProcessRecord, uid: UInt32) {
        let path = Self.systemdCgroupPath(record.cgroup)
        self.init(
            sessionByCgroup: path.flatMap(Self.sessionScope(inCgroupPath:)),
            auditSession: Self.auditNumber(record.sessionID),
            loginUID: Self.auditNumber(record.loginUID),
            inUserManager: path.map { "\($0)/".contains("/user@\(uid).service/") } ?? false)
    }

    /// The path of systemd's hierarchy in a `/proc/PID/cgroup` text: the `name=systemd` line
    /// (cgroup v1, hybrid), else the unified `0::` line.
    static func systemdCgroupPath(_ text: String) -> String? {
        var unified: String?
        for line in text.split(separator: "\n") {
            // hierarchy-ID:controllers:path
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[1] == "name=systemd" { return String(fields[2]) }
            if fields[0] == "0" && fields[1].isEmpty { unified = String(fields[2]) }
        }
        return unified
    }

    /// The logind session whose scope holds a cgroup path, as `sd_pid_get_session` finds it: the
    /// first component that is not a slice is the unit, and a session's unit is `session-ID.scope`.
    /// A delegated user cgroup lies below `user@UID.service`, so it can never pass for one.
    static func sessionScope(inCgroupPath path: String) -> String? {
        guard let unit = path.split(separator: "/").first(where: { !$0.hasSuffix(".slice") }),
            unit.hasPrefix("session-"), unit.hasSuffix(".scope")
        else { return nil }
        let id = String(unit.dropFirst("session-".count).dropLast(".scope".count))
        return SessionIdentity.isSafeComponent(id) ? id : nil
    }

    /// A number from `sessionid` or `loginuid`; nil when not a number or unset (4294967295).
    static func auditNumber(_ text: String) -> UInt32? {
        guard let value = UInt32(text.trimmingCharacters(in: " \n")) else { return nil }
        return value == UInt32.max ? nil : value
    }
}
