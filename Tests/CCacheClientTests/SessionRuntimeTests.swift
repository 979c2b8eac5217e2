import Foundation
import SessionRuntime
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Where a session's daemon lives, and the refusal of unsafe directories on the way.
@Suite("SessionRuntime")
final class SessionRuntimeTests: ScratchSuite {
    @Test("CCACHED_SESSION names the session; the directory is <XDG_RUNTIME_DIR>/ccached/<session>, 0700")
    func explicitSession() throws {
        let env = ["XDG_RUNTIME_DIR": scratch.path, "CCACHED_SESSION": "s1"]
        let paths = try SessionPaths.resolve(environment: env, uid: getuid())
        #expect(paths.session == SessionIdentity(key: "s1", source: .environment))
        #expect(paths.directory == scratch.path + "/ccached/s1")
        #expect(paths.socket == scratch.path + "/ccached/s1/.heim_org.h5l.kcm-socket")
        #expect(paths.krb5Fragment == scratch.path + "/ccached/s1/krb5.conf")
        var info = stat()
        #expect(lstat(paths.directory, &info) == 0 && info.st_mode & 0o777 == 0o700)
        #expect(lstat(scratch.path + "/ccached", &info) == 0 && info.st_mode & 0o777 == 0o700)
        try paths.writeKrb5Fragment()
        let text = try String(contentsOfFile: paths.krb5Fragment, encoding: .utf8)
        #expect(text.contains("kcm_socket = \(paths.socket)"))
        #expect(text.contains("default_ccache_name = KCM:"))
    }

    @Test("CCACHED_SOCKET overrides the session layout")
    func explicitSocket() throws {
        let paths = try SessionPaths.resolve(
            environment: ["CCACHED_SOCKET": scratch.path + "/my.sock", "CCACHED_SESSION": "ignored"], uid: getuid())
        #expect(paths.isExplicitSocket)
        #expect(paths.socket == scratch.path + "/my.sock")
        #expect(paths.spawnLock == scratch.path + "/my.sock.lock")
        #expect(paths.krb5Fragment == scratch.path + "/my.sock.krb5.conf")
        // The standard socket name keeps the session directory's layout (the systemd units' case).
        let standard = try SessionPaths.resolve(
            environment: ["CCACHED_SOCKET": scratch.path + "/user/.heim_org.h5l.kcm-socket"], uid: getuid())
        #expect(standard.krb5Fragment == scratch.path + "/user/krb5.conf")
        #expect(standard.spawnLock == scratch.path + "/user/spawn.lock")
    }

    @Test("without CCACHED_SESSION the key comes from the routing rule: a login, a job, or the user")
    func detectedSession() throws {
        let identity = try SessionIdentity.current(environment: [:])
        let audit = (try? String(contentsOfFile: "/proc/self/sessionid", encoding: .utf8))
            .flatMap { UInt32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        switch identity.source {
        case .logind: #expect(!identity.key.isEmpty)
        case .audit: #expect(identity.key == "job-\(audit ?? 0)")
        case .user: #expect(identity.key == "user")
        case .environment: Issue.record("no CCACHED_SESSION was given")
        }
    }

    @Test(
        "unsafe session names are refused",
        arguments: ["../x", "a/b", "", "..", String(repeating: "a", count: 65), "sp ace"])
    func invalidSessionName(name: String) {
        if name.isEmpty {
            #expect((try? SessionIdentity.current(environment: ["CCACHED_SESSION": name]))?.source != .environment)
        } else {
            #expect(throws: SessionRuntimeError.invalidSessionName(name)) {
                try SessionIdentity.current(environment: ["CCACHED_SESSION": name])
            }
        }
    }

    @Test("a session directory with a group/other mode, a symlink, or another owner is refused with its path")
    func unsafeDirectories() throws {
        mkdir(scratch.path + "/ccached", 0o700)
        mkdir(scratch.path + "/ccached/open", 0o700)
        chmod(scratch.path + "/ccached/open", 0o755)
        let env = ["XDG_RUNTIME_DIR": scratch.path, "CCACHED_SESSION": "open"]
        do {
            _ = try SessionPaths.resolve(environment: env, uid: getuid())
            Issue.record("a 0755 session directory was accepted")
        } catch {
            #expect(error.description.contains(scratch.path + "/ccached/open"))
            #expect(error.description.contains("open to group or others (mode 755"))
        }
        mkdir(scratch.path + "/elsewhere", 0o700)
        symlink(scratch.path + "/elsewhere", scratch.path + "/ccached/linked")
        do {
            _ = try SessionPaths.resolve(
                environment: ["XDG_RUNTIME_DIR": scratch.path, "CCACHED_SESSION": "linked"], uid: getuid())
            Issue.record("a symlinked session directory was accepted")
        } catch {
            #expect(error.description.contains("symbolic link"))
        }
        chmod(scratch.path + "/ccached", 0o777)
        #expect(throws: SessionRuntimeError.self) {
            try SessionPaths.resolve(
                environment: ["XDG_RUNTIME_DIR": scratch.path, "CCACHED_SESSION": "fine"], uid: getuid())
        }
        chmod(scratch.path + "/ccached", 0o700)
        do {
            _ = try SessionPaths.resolve(
                environment: ["XDG_RUNTIME_DIR": scratch.path, "CCACHED_SESSION": "fine"], uid: getuid() + 1)
            Issue.record("a directory owned by someone else was accepted")
        } catch {
            #expect(error.description.contains("owned by uid \(getuid()), not uid \(getuid() + 1)"))
        }
    }
}
