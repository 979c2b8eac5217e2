// The kernel as the router (issue 21, item 2): a cgroup BPF_CGROUP_UNIX_CONNECT program that sends a
// connect to the door's path straight to a session daemon's socket when the door said so for the
// connecting task's (cgroup id, effective uid). A prototype, not part of the product: see README.md
// and Docs/performance.md, "The kernel as the router".
//
// Kernel 6.7+ (the attach type and the kfunc bpf_sock_addr_set_sun_path). Built with any clang that
// has the bpf target; needs only libbpf's headers (bpf_helpers.h, bpf_core_read.h), no vmlinux.h:
// the three kernel structs it reads are declared below with CO-RE relocations.
#include <linux/bpf.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#define AF_UNIX 1
#define SUN_PATH 108
#define DOOR_PATHS 4

// What the kernel calls them; CO-RE matches by name and field name, so only the fields used appear.
struct bpf_sock_addr_kern {
    struct sockaddr *uaddr;
    __u32 uaddrlen;
} __attribute__((preserve_access_index));

typedef struct {
    __u32 val;
} kuid_t;

struct cred {
    kuid_t euid;
} __attribute__((preserve_access_index));

struct super_block {
    __u32 s_dev;
} __attribute__((preserve_access_index));

struct inode {
    unsigned long i_ino;
} __attribute__((preserve_access_index));

struct dentry {
    struct inode *d_inode;
    struct super_block *d_sb;
} __attribute__((preserve_access_index));

struct path {
    struct dentry *dentry;
} __attribute__((preserve_access_index));

struct fs_struct {
    struct path root;
} __attribute__((preserve_access_index));

struct ns_common {
    unsigned int inum;
} __attribute__((preserve_access_index));

struct mnt_namespace {
    struct ns_common ns;
} __attribute__((preserve_access_index));

struct nsproxy {
    struct mnt_namespace *mnt_ns;
} __attribute__((preserve_access_index));

struct task_struct {
    struct cred *cred;
    kuid_t loginuid;
    unsigned int sessionid;
    struct nsproxy *nsproxy;
    struct fs_struct *fs;
} __attribute__((preserve_access_index));

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;
extern int bpf_sock_addr_set_sun_path(struct bpf_sock_addr_kern *sa_kern, const __u8 *sun_path,
                                      __u32 sun_path__sz) __ksym;

// A path: its length without the NUL, and the bytes NUL-padded to the full sun_path.
struct unix_path {
    __u32 length;
    __u8 path[SUN_PATH];
};

// What decides where the connecting task is routed, and what its paths name:
// - the cgroup v2 id of the task (rule 1 of LoginRouter: the session scope);
// - its effective uid (exactly what the kernel records for SO_PEERCRED at this connect);
// - its mount namespace and root directory (device in the kernel's encoding, inode): the door is
//   reached by the file a path names, this program sees only the string; within one mount namespace
//   and root the same absolute path names the same file, so the door's path is the door's socket
//   and the daemon's path the socket the door checked;
// - its login uid and audit session id (rules 1 and 2 by audit session).
// With the uid and the cgroup these are everything LoginRouter decides from (the door's RouteCache
// key), so an entry the door made for one peer holds for every task with the same key while
// logind's state stays the same.
struct route_key {
    __u64 cgroup;
    __u32 uid;
    __u32 mount_namespace;
    __u64 root_inode;
    __u32 root_device;
    __u32 login_uid;
    __u32 audit_session;
    __u32 zero;
};

// The door's paths (the only paths ever rewritten); an entry of length 0 is unused.
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, DOOR_PATHS);
    __type(key, __u32);
    __type(value, struct unix_path);
} door_path SEC(".maps");

// Filled by the door only: (cgroup, uid) -> the session daemon's client socket.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct route_key);
    __type(value, struct unix_path);
} routes SEC(".maps");

// Counters for the prototype's report: [0] connects to the door's path, [1] rewritten.
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 which) {
    __u64 *value = bpf_map_lookup_elem(&counters, &which);
    if (value) *value += 1;
}

// Whether the path the kernel will look up (the caller's bytes up to the first NUL or addrlen)
// is `door`.
static __always_inline int is_door(const struct unix_path *door, const __u8 *given, __u32 addrlen) {
    __u32 length = door->length;
    if (length == 0 || length >= SUN_PATH || addrlen < 2 + length) return 0;
    for (__u32 i = 0; i < SUN_PATH; i++) {
        if (i >= length) break;
        if (given[i] != door->path[i]) return 0;
    }
    return addrlen == 2 + length || given[length] == 0;
}

// Returns 1 (allow) always: a miss, or anything unexpected, leaves the connect to the door.
SEC("cgroup/connect_unix")
int kcm_route(struct bpf_sock_addr *ctx) {
    struct bpf_sock_addr_kern *sa = bpf_cast_to_kern_ctx(ctx);
    // The kernel's copy of the caller's address and its length (the family is AF_UNIX: this attach
    // type runs only for AF_UNIX connects). Bytes past the length are not the caller's.
    __u32 addrlen = sa->uaddrlen;
    if (addrlen < 3 || addrlen > 2 + SUN_PATH) return 1;
    __u8 given[SUN_PATH];
    if (bpf_probe_read_kernel(given, sizeof(given), (__u8 *)sa->uaddr + 2) != 0) return 1;
    // MIT and Heimdal connect to /var/run/.heim_org.h5l.kcm-socket by default, ccached's tools to
    // /run/...: the door's paths are entries 0..3 (the loader sets those that name the door's socket).
    int matched = 0;
    for (__u32 index = 0; index < DOOR_PATHS; index++) {
        struct unix_path *door = bpf_map_lookup_elem(&door_path, &index);
        if (door && is_door(door, given, addrlen)) {
            matched = 1;
            break;
        }
    }
    if (!matched) return 1;
    count(0);

    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct route_key key = {
        .cgroup = bpf_get_current_cgroup_id(),
        // The effective uid of the connecting thread's credentials: exactly what the kernel records
        // for SO_PEERCRED at this connect (bpf_get_current_uid_gid gives the real uid instead).
        .uid = BPF_CORE_READ(task, cred, euid.val),
        .mount_namespace = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum),
        .root_inode = BPF_CORE_READ(task, fs, root.dentry, d_inode, i_ino),
        .root_device = BPF_CORE_READ(task, fs, root.dentry, d_sb, s_dev),
        .login_uid = BPF_CORE_READ(task, loginuid.val),
        .audit_session = BPF_CORE_READ(task, sessionid),
        .zero = 0,
    };
    struct unix_path *route = bpf_map_lookup_elem(&routes, &key);
    if (!route) return 1;
    // The whole NUL-padded sun_path: the kernel ends the path at its first NUL.
    if (bpf_sock_addr_set_sun_path(sa, route->path, SUN_PATH) == 0) count(1);
    return 1;
}

// kfuncs are offered to GPL-compatible programs only.
char LICENSE[] SEC("license") = "GPL";
