import Glibc

/// What the door needs to start a daemon as a user: from the passwd and group databases, read by
/// the door (root) and never by the child it forks.
package struct UserAccount: Sendable {
    package let uid: UInt32
    package let gid: UInt32
    package let name: String
    package let home: String
    /// The supplementary groups, as `initgroups` would set them (`getgrouplist`).
    package let groups: [UInt32]

    package init(uid: UInt32, gid: UInt32, name: String, home: String, groups: [UInt32]) {
        self.uid = uid
        self.gid = gid
        self.name = name
        self.home = home
        self.groups = groups
    }

    /// Looks the uid up; nil when it has no passwd entry. The group database is read only when
    /// `includingGroups` (only a daemon start needs the groups; routing to a running daemon does not).
    package static func lookUp(uid: UInt32, includingGroups: Bool = true) -> UserAccount? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        let status = getpwuid_r(uid, &entry, &buffer, buffer.count, &result)
        guard status == 0, result != nil, let rawName = entry.pw_name else { return nil }
        let name = String(cString: rawName)
        let home = entry.pw_dir.map { String(cString: $0) } ?? "/"
        let gid = entry.pw_gid
        guard includingGroups else { return UserAccount(uid: uid, gid: gid, name: name, home: home, groups: [gid]) }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        while getgrouplist(name, gid, &groups, &count) < 0 {
            guard count > Int32(groups.count), count <= 65536 else { break }
            groups = [gid_t](repeating: 0, count: Int(count))
        }
        return UserAccount(
            uid: uid, gid: gid, name: name, home: home, groups: Array(groups.prefix(Int(max(0, count)))))
    }
}
