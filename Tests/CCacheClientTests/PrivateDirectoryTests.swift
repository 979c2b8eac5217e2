import CSupport
import Foundation
import SessionRuntime
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The private-directory rule (Sources/CSupport/private_directory.c), which the door, root's own
/// client and pam_ccached share: driven here through a scratch "run" directory, never /run.
@Suite("The private-directory rule: /run/ccached/<uid> made by root, no link followed")
struct PrivateDirectoryTests {
    /// A descriptor for `path`, as the callers open their run directory.
    func directory(_ path: String) -> Int32 { open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }

    /// `ccached_ensure_private_directory(parent, name, mode)` for this process's own uid and gid: the
    /// descriptor (closed here), errno, and the owner and mode it reports finding.
    func ensure(in parent: String, _ name: String, mode: mode_t) -> (
        made: Bool, code: Int32, owner: uid_t, mode: mode_t
    ) {
        let fd = directory(parent)
        defer { close(fd) }
        var owner = uid_t(0)
        var found = mode_t(0)
        let made = ccached_ensure_private_directory(fd, name, mode, getuid(), getgid(), &owner, &found)
        let code = errno
        if made >= 0 { close(made) }
        return (made >= 0, made >= 0 ? 0 : code, owner, found)
    }

    @Test("a symbolic link in place of the user's directory is refused, and what it points at is left alone")
    func linkRefused() throws {
        let run = try ScratchDirectory.make("private-dir", mode: 0o755)
        defer { ScratchDirectory.remove(run) }
        let elsewhere = run.path + "/elsewhere"
        #expect(mkdir(elsewhere, 0o755) == 0)
        #expect(symlink(elsewhere, run.path + "/4242") == 0)
        let result = ensure(in: run.path, "4242", mode: 0o700)
        #expect(!result.made)
        #expect(result.code == ELOOP)
        var info = stat()
        #expect(lstat(elsewhere, &info) == 0 && info.st_mode & 0o7777 == 0o755, "the link's target was changed")
        #expect(lstat(run.path + "/4242", &info) == 0 && info.st_mode & S_IFMT == S_IFLNK, "the link was replaced")
    }

    @Test("an existing directory with the wrong mode is refused and reported, not changed")
    func wrongModeRefused() throws {
        let run = try ScratchDirectory.make("private-dir", mode: 0o755)
        defer { ScratchDirectory.remove(run) }
        #expect(mkdir(run.path + "/mine", 0o700) == 0)
        chmod(run.path + "/mine", 0o755)
        let result = ensure(in: run.path, "mine", mode: 0o700)
        #expect(!result.made)
        #expect(result.code == EPERM)
        #expect(result.owner == getuid() && result.mode == 0o755)
        var info = stat()
        #expect(lstat(run.path + "/mine", &info) == 0 && info.st_mode & 0o7777 == 0o755)
    }

    @Test("threads that make the same new directory at once all get it: none finds it half made")
    func concurrentCreation() throws {
        let run = try ScratchDirectory.make("private-dir", mode: 0o755)
        defer { ScratchDirectory.remove(run) }
        let parent = directory(run.path)
        try #require(parent >= 0)
        defer { close(parent) }
        let threads = 8
        let rounds = 40
        let refused = Atomic<Int>(0)
        for round in 0..<rounds {
            // Made 0700, then widened: the moment between is when a second maker would see it wrong.
            let name = "d\(round)"
            DispatchQueue.concurrentPerform(iterations: threads) { _ in
                var owner = uid_t(0)
                var found = mode_t(0)
                let made = ccached_ensure_private_directory(parent, name, 0o755, getuid(), getgid(), &owner, &found)
                if made >= 0 { close(made) } else { refused.add(1, ordering: .relaxed) }
            }
        }
        #expect(refused.load(ordering: .relaxed) == 0)
        let left = try FileManager.default.contentsOfDirectory(atPath: run.path).filter { $0.hasPrefix(".") }
        #expect(left.isEmpty, "temporary directories left behind: \(left)")
    }

    @Test("a new directory gets the mode asked for, even one wider than the 0700 it is made with")
    func newDirectoryMode() throws {
        let run = try ScratchDirectory.make("private-dir", mode: 0o755)
        defer { ScratchDirectory.remove(run) }
        #expect(ensure(in: run.path, "top", mode: 0o755).made)
        var info = stat()
        #expect(lstat(run.path + "/top", &info) == 0 && info.st_uid == getuid() && info.st_mode & 0o7777 == 0o755)
        // A second time finds and accepts it.
        #expect(ensure(in: run.path, "top", mode: 0o755).made)
    }

    @Test(
        "as root, ccached (root 0755) and ccached/<uid> (the user's, 0700) are made; a run directory others may write is refused",
        .requiresRoot("needs root to give a directory to another uid"))
    func rootManagedBase() throws {
        let run = try ScratchDirectory.make("private-dir", mode: 0o755)
        defer { ScratchDirectory.remove(run) }
        let made = try RuntimeDirectory.ensureRootManaged(runRoot: run.path, uid: 4242, gid: 4343)
        #expect(made == run.path + "/ccached/4242")
        var info = stat()
        #expect(lstat(run.path + "/ccached", &info) == 0 && info.st_uid == 0 && info.st_mode & 0o7777 == 0o755)
        #expect(
            lstat(run.path + "/ccached/4242", &info) == 0 && info.st_uid == 4242 && info.st_gid == 4343
                && info.st_mode & 0o7777 == 0o700)

        // Another uid's directory in its place: refused with what was found, never given away.
        #expect(mkdir(run.path + "/ccached/4444", 0o700) == 0 && chown(run.path + "/ccached/4444", 4545, 4545) == 0)
        #expect {
            try RuntimeDirectory.ensureRootManaged(runRoot: run.path, uid: 4444, gid: 4444)
        } throws: { error in
            "\(error)".contains("owned by uid 4545 with mode 700, not uid 4444")
        }
        #expect(lstat(run.path + "/ccached/4444", &info) == 0 && info.st_uid == 4545)

        // A link in place of ccached itself.
        let other = try ScratchDirectory.make("private-dir", mode: 0o755)
        defer { ScratchDirectory.remove(other) }
        #expect(mkdir(other.path + "/target", 0o755) == 0)
        #expect(symlink(other.path + "/target", other.path + "/ccached") == 0)
        #expect {
            try RuntimeDirectory.ensureRootManaged(runRoot: other.path, uid: 4242, gid: 4242)
        } throws: { error in
            "\(error)".contains(other.path + "/ccached: it is a symbolic link")
        }
        #expect(lstat(other.path + "/target/4242", &info) != 0, "something was made through the link")

        // A run directory others may write: whatever is in it could have been put there by anyone.
        chmod(run.path, 0o777)
        #expect(throws: SessionRuntimeError.self) {
            try RuntimeDirectory.ensureRootManaged(runRoot: run.path, uid: 4242, gid: 4343)
        }
    }
}
