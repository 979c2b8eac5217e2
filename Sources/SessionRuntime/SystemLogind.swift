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

extension PeerProcess {
    /// Reads what the kernel says about process `pid` (0: this process) of user `uid`: its session
    /// scope (`sd_pid_get_session`), `/proc/PID/sessionid`, `/proc/PID/loginuid`, and whether
    /// `/proc/PID/cgroup` lies under `user@UID.service`. A pid that is not a process this one can
    /// see reads as ``unseen``.
    ///
    /// The answer is about whatever process has that pid *now*: a caller that got the pid from a
    /// socket must confirm afterwards that the same process still holds it (ccached-door does so
    /// through the peer's pidfd).
    public static func read(pid: Int32, uid: UInt32) -> PeerProcess {
        guard pid >= 0 else { return .unseen }
        let directory = pid == 0 ? "/proc/self" : "/proc/\(pid)"
        let cgroup = readSmallFile(directory + "/cgroup", limit: 16384) ?? ""
        return PeerProcess(
            sessionByCgroup: SessionIdentity.loginSession(ofProcess: pid),
            auditSession: readAuditNumber(directory + "/sessionid"),
            loginUID: readAuditNumber(directory + "/loginuid"),
            inUserManager: cgroup.contains("/user@\(uid).service/") || cgroup.hasSuffix("/user@\(uid).service\n"))
    }

    /// A number from `/proc/PID/sessionid` or `loginuid`; nil when unreadable or unset (4294967295).
    static func readAuditNumber(_ path: String) -> UInt32? {
        guard let text = readSmallFile(path), let value = UInt32(text.trimmingCharacters(in: " \n")) else {
            return nil
        }
        return value == UInt32.max ? nil : value
    }
}
