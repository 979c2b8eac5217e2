#!/usr/bin/env python3
"""What the kernel route does, case by case (contrib/bpf/README.md).

    contrib/bpf/check-kernel-route.py [OUT]   (root; OUT holds kcm-route and kcm-route.bpf.o: make OUT=...)

Makes a cgroup of its own (never the host's root cgroup), attaches kcm-route there, listens on a
stand-in door and a stand-in daemon socket in a temporary directory, and connects from children
moved into that cgroup: which socket took each connection, and the SO_PEERCRED uid it saw. Prints
PASS or FAIL per case; exits 1 on a FAIL, 77 (skip) when not root or the kernel refuses the program.
"""
import ctypes, os, select, shutil, socket, struct, subprocess, sys, tempfile, threading, time

out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
if os.geteuid() != 0:
    print("SKIP: needs root (a cgroup of its own, CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)"); sys.exit(77)
unified = "/sys/fs/cgroup" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "/sys/fs/cgroup/unified"
CG = f"{unified}/ccached-kernel-route-check.{os.getpid()}"
T = tempfile.mkdtemp(prefix="kroute-check.")
JAIL = T + "/jail"
door, daemon = T + "/door.sock", T + "/daemon.sock"
os.makedirs(JAIL + T)
for directory in (T, JAIL, JAIL + "/tmp", JAIL + T):
    os.chmod(directory, 0o755)
os.mkdir(CG)
libc = ctypes.CDLL(None, use_errno=True)
servers = {}
for name, path in (("door", door), ("daemon", daemon), ("jail's own door", JAIL + door)):
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(64)
    os.chmod(path, 0o777)
    servers[name] = server
loader = subprocess.Popen([out + "/kcm-route", out + "/kcm-route.bpf.o", CG, door],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
first = loader.stdout.readline().strip()
if first != "ready":
    print("SKIP: kcm-route:", first or loader.stderr.read().strip())
    shutil.rmtree(T); os.rmdir(CG); sys.exit(77)
failures = 0


def command(line):
    loader.stdin.write(line + "\n"); loader.stdin.flush()
    return loader.stdout.readline().strip()


def taken():
    """Which socket took the connection, and the uid SO_PEERCRED gave it."""
    ready, _, _ = select.select(list(servers.values()), [], [], 2)
    for server in ready:
        connection, _ = server.accept()
        _, uid, _ = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        connection.close()
        return next(name for name, s in servers.items() if s is server), uid
    return None, None


def connect_from_child(prepare, path=door):
    """A child joins the cgroup, runs prepare(), connects to path; returns (taken by, uid) or the error."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        try:
            with open(CG + "/cgroup.procs", "w") as procs: procs.write("0")
            if not prepare():  # True: it connected itself
                client = socket.socket(socket.AF_UNIX)
                client.connect(path)
            os.write(writer, b"ok"); time.sleep(0.1); os._exit(0)
        except OSError as error:
            os.write(writer, f"error: {error.strerror}".encode()); os._exit(1)
    os.close(writer)
    said = os.read(reader, 200).decode(); os.close(reader)
    result = taken() if said == "ok" else (said, None)
    os.waitpid(pid, 0)
    return result


def expect(case, got, wanted):
    global failures
    ok = got == wanted
    failures += not ok
    print(f"{'PASS' if ok else 'FAIL'}: {case}: {got[0]}" + (f" (SO_PEERCRED uid {got[1]})" if got[1] is not None else "")
          + ("" if ok else f"; expected {wanted}"))


def nothing(): pass
def setuid_root_by(uid): return lambda: os.setresuid(uid, 0, 0)  # a setuid-root program run by uid
def effective(uid): return lambda: os.setresuid(0, uid, 0)
def user(uid): return lambda: os.setresuid(uid, uid, uid)
def chroot(): os.chroot(JAIL)
def new_mount_namespace(): assert libc.unshare(0x20000) == 0  # CLONE_NEWNS
def new_login(): open("/proc/self/loginuid", "w").write("0")  # a new audit session (as pam_loginuid)


def thread_with_own_uid(uid):
    """Only the connecting thread takes uid (the raw syscall: glibc's setresuid changes every thread)."""
    def prepare():
        result = {}
        def body():
            try:
                libc.syscall(117, uid, uid, uid)  # SYS_setresuid, this thread only
                client = socket.socket(socket.AF_UNIX)
                client.connect(door)
                result["client"] = client
            except OSError as error:
                result["error"] = error
        thread = threading.Thread(target=body); thread.start(); thread.join()
        if "error" in result: raise result["error"]
        return True
    return prepare


me = os.getpid()
expect("no route: the door", connect_from_child(nothing), ("door", 0))
expect("add a route for uid 0", (command(f"add {CG} 0 {me} {daemon}"), None), ("ok", None))
expect("uid 0 with a route: the daemon", connect_from_child(nothing), ("daemon", 0))
expect("uid 1000 without a route: the door", connect_from_child(user(1000)), ("door", 1000))
expect("setuid root run by uid 1000 (real 1000, effective 0): uid 0's route, as SO_PEERCRED says",
       connect_from_child(setuid_root_by(1000)), ("daemon", 0))
expect("real uid 0, effective 1000, no route for 1000: the door", connect_from_child(effective(1000)), ("door", 1000))
expect("one thread with uid 1000 of a uid-0 process: the door", connect_from_child(thread_with_own_uid(1000)),
       ("door", 1000))
expect("add a route for uid 1000", (command(f"add {CG} 1000 {me} {daemon}"), None), ("ok", None))
expect("one thread with uid 1000 of a uid-0 process: uid 1000's route", connect_from_child(thread_with_own_uid(1000)),
       ("daemon", 1000))
expect("a chroot whose door path names another socket: that socket", connect_from_child(chroot),
       ("jail's own door", 0))
expect("another mount namespace: the door", connect_from_child(new_mount_namespace), ("door", 0))
expect("another audit session (login): the door", connect_from_child(new_login), ("door", 0))
expect("the door's path with a trailing byte: not the door's path, untouched",
       connect_from_child(nothing, path=door + "x"), ("error: No such file or directory", None))
expect("the daemon's own path: untouched", connect_from_child(nothing, path=daemon), ("daemon", 0))
# The daemon goes while its route stays: the kernel has no way back to the door.
servers.pop("daemon").close(); os.unlink(daemon)
expect("a route to a daemon that has gone: the connect fails, the door never sees it",
       connect_from_child(nothing), ("error: No such file or directory", None))
expect("del the route for uid 0", (command(f"del {CG} 0 {me}"), None), ("ok", None))
expect("after del: the door", connect_from_child(nothing), ("door", 0))
print(command("stats"))
loader.stdin.close(); loader.wait()
expect("the loader (the door) has exited: the link is gone, the door again",
       connect_from_child(user(1000)), ("door", 1000))
shutil.rmtree(T)
os.rmdir(CG)
sys.exit(1 if failures else 0)
