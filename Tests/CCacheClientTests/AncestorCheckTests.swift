import Foundation
import SessionRuntime
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// ``AncestorCheck``: every directory on the way to a socket, not only its parent (issue 12, item 6).
@Suite("AncestorCheck")
final class AncestorCheckTests: ScratchSuite {
    @Test("a private directory under /tmp (root's, sticky) passes, relative or absolute")
    func safeChainPasses() throws {
        mkdir(scratch.path + "/a", 0o700)
        mkdir(scratch.path + "/a/b", 0o755)
        #expect(AncestorCheck.firstProblem(in: scratch.path + "/a/b", uid: getuid()) == nil)
        let saved = FileManager.default.currentDirectoryPath
        defer { _ = FileManager.default.changeCurrentDirectoryPath(saved) }
        #expect(FileManager.default.changeCurrentDirectoryPath(scratch.path))
        #expect(AncestorCheck.firstProblem(in: "a/b", uid: getuid()) == nil)
        #expect(AncestorCheck.firstProblem(in: "a/../a/b", uid: getuid()) == nil)
    }

    @Test("a group- or world-writable ancestor without the sticky bit is named, however far up")
    func writableAncestor() throws {
        mkdir(scratch.path + "/open", 0o700)
        mkdir(scratch.path + "/open/x", 0o700)
        mkdir(scratch.path + "/open/x/y", 0o700)
        for mode: mode_t in [0o777, 0o770, 0o702] {
            chmod(scratch.path + "/open", mode)
            let problem = AncestorCheck.firstProblem(in: scratch.path + "/open/x/y", uid: getuid())
            #expect(problem?.path == scratch.path + "/open", "mode \(String(mode, radix: 8))")
            #expect(problem?.problem.contains("writable by group or others") == true, "\(String(describing: problem))")
        }
        // The sticky bit makes a shared directory safe, as /tmp is: only an entry's owner renames it.
        chmod(scratch.path + "/open", 0o1777)
        #expect(AncestorCheck.firstProblem(in: scratch.path + "/open/x/y", uid: getuid()) == nil)
        chmod(scratch.path + "/open", 0o700)
    }

    @Test("a symbolic link anywhere on the way is refused, even one to a safe directory")
    func symlinkAncestor() throws {
        mkdir(scratch.path + "/real", 0o700)
        mkdir(scratch.path + "/real/sub", 0o700)
        symlink(scratch.path + "/real", scratch.path + "/link")
        let problem = AncestorCheck.firstProblem(in: scratch.path + "/link/sub", uid: getuid())
        #expect(problem?.path == scratch.path + "/link")
        #expect(problem?.problem.contains("symbolic link") == true)
        // A missing directory is a problem too (the caller creates before it checks).
        #expect(
            AncestorCheck.firstProblem(in: scratch.path + "/missing/sub", uid: getuid())?.path == scratch.path
                + "/missing")
        // A file where a directory should be.
        FileManager.default.createFile(atPath: scratch.path + "/file", contents: nil)
        #expect(
            AncestorCheck.firstProblem(in: scratch.path + "/file", uid: getuid())?.problem == "it is not a directory")
    }

    @Test(
        "an ancestor owned by another user (not root) is refused: they could swap what lies below it",
        .requiresRoot("needs root to give a directory to another uid"))
    func foreignOwnerAncestor() throws {
        chmod(scratch.path, 0o755)
        mkdir(scratch.path + "/theirs", 0o755)
        mkdir(scratch.path + "/theirs/rootsub", 0o700)
        // uid 65534 (nobody) owns the middle directory; the leaf is root's and private.
        #expect(chown(scratch.path + "/theirs", 65534, 65534) == 0)
        let problem = AncestorCheck.firstProblem(in: scratch.path + "/theirs/rootsub", uid: 0)
        #expect(problem?.path == scratch.path + "/theirs")
        #expect(
            problem?.problem.contains("owned by uid 65534, neither root nor uid 0") == true,
            "\(String(describing: problem))")
        // For nobody itself the same chain is fine up to its own directory (root's leaf is allowed).
        #expect(AncestorCheck.firstProblem(in: scratch.path + "/theirs/rootsub", uid: 65534) == nil)
    }
}

/// The per-user base without XDG_RUNTIME_DIR (issue 12, item 2): never a name in /tmp that another
/// user could create first.
@Suite("SessionRuntime base")
struct RuntimeBaseTests {
    @Test("with neither /run/user/<uid> nor /run/ccached/<uid>, a clear error, and nothing made in /tmp")
    func noRuntimeDirectory() throws {
        let uid: UInt32 = 3_999_999_917
        var info = stat()
        try #require(lstat("/run/user/\(uid)", &info) != 0 && lstat("/run/ccached/\(uid)", &info) != 0)
        do {
            _ = try SessionPaths.resolve(environment: ["CCACHED_SESSION": "s"], uid: uid)
            Issue.record("a runtime base was found for uid \(uid)")
        } catch {
            #expect(error == .noRuntimeDirectory(uid: uid))
            #expect(error.description.contains("/run/ccached/\(uid)"), "\(error)")
            #expect(error.description.contains("pam_ccached"), "\(error)")
        }
        #expect(lstat("/tmp/ccached-\(uid)", &info) != 0, "the old squattable name was created")
        #expect(lstat("/run/ccached/\(uid)", &info) != 0, "a non-root resolve created /run/ccached/\(uid)")
    }
}
