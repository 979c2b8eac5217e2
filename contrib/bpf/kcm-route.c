// kcm-route: loads contrib/bpf/kcm-route.bpf.o, attaches it to one cgroup v2 directory with a BPF
// link (so it is detached when this process exits: no entry outlives its owner), and takes
// commands on stdin, one a line, as the door would give them:
//
//   add CGROUP_DIR UID PID SOCKET  the door routed peer PID (uid UID, in CGROUP_DIR) to SOCKET by
//                                  the full rule; the key takes PID's mount namespace, root, login
//                                  uid and audit session
//   del CGROUP_DIR UID PID         that route no longer holds
//   clear                       every route goes (the door's RouteCache generation moved on)
//   stats                       connects to the door's path seen, and rewritten
//
// Usage: kcm-route OBJECT CGROUP_DIR DOOR_PATH... (the paths that name the door's socket, at most
// 4: /run/.heim_org.h5l.kcm-socket and /var/run/.heim_org.h5l.kcm-socket on a host). Prints "ready" once attached and "ok" or
// "error: ..." per command; exits 2 with the reason when the kernel or the host's policy does not
// allow it (kernel before 6.7, no BTF, no CAP_BPF + CAP_NET_ADMIN, lockdown). A prototype: see
// README.md.
//
// Loading: Debian 12's libbpf 1.1 predates BPF_CGROUP_UNIX_CONNECT (kernel 6.7) and does not know
// the section name, so the program type and the expected attach type are set by number before the
// load; libbpf 1.1 still does everything else (maps, CO-RE relocations against /sys/kernel/btf/
// vmlinux, and the __ksym kfuncs' BTF ids), and bpf_link_create passes the attach type through.
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define BPF_CGROUP_UNIX_CONNECT_NUMBER 49 /* enum bpf_attach_type, kernel 6.7 */
#define SUN_PATH 108
#define DOOR_PATHS 4

struct unix_path {
    uint32_t length;
    uint8_t path[SUN_PATH];
};

struct route_key {
    uint64_t cgroup;
    uint32_t uid;
    uint32_t mount_namespace;
    uint64_t root_inode;
    uint32_t root_device;
    uint32_t login_uid;
    uint32_t audit_session;
    uint32_t zero;
};

static int read_number(const char *path, uint32_t *value) {
    FILE *file = fopen(path, "re");
    if (!file) return -errno;
    unsigned long long number;
    int read = fscanf(file, "%llu", &number);
    fclose(file);
    if (read != 1 || number > UINT32_MAX) return -EINVAL;
    *value = (uint32_t)number;
    return 0;
}

// The peer's mount namespace, root directory, login uid and audit session, as the program reads them (the door would read
// them while the peer's pidfd proves the pid is still the peer's).
static int peer_view(int pid, struct route_key *key) {
    char path[64];
    struct stat info;
    snprintf(path, sizeof(path), "/proc/%d/ns/mnt", pid);
    if (stat(path, &info) != 0) return -errno;
    key->mount_namespace = (uint32_t)info.st_ino;
    snprintf(path, sizeof(path), "/proc/%d/root/", pid);
    if (stat(path, &info) != 0) return -errno;
    key->root_inode = info.st_ino;
    // The kernel's dev_t: major in the top 12 bits, minor in the low 20.
    key->root_device = (major(info.st_dev) << 20) | minor(info.st_dev);
    snprintf(path, sizeof(path), "/proc/%d/loginuid", pid);
    int failure = read_number(path, &key->login_uid);
    if (failure) return failure;
    snprintf(path, sizeof(path), "/proc/%d/sessionid", pid);
    return read_number(path, &key->audit_session);
}

static int quiet_libbpf(enum libbpf_print_level level, const char *format, va_list args) {
    if (level == LIBBPF_DEBUG && !getenv("KCM_ROUTE_DEBUG")) return 0;
    return vfprintf(stderr, format, args);
}

// The cgroup v2 id of a cgroup directory: its file handle (what bpf_get_current_cgroup_id returns).
static int cgroup_id(const char *directory, uint64_t *id) {
    struct {
        struct file_handle handle;
        uint64_t id;
    } buffer;
    int mount_id;
    buffer.handle.handle_bytes = sizeof(uint64_t);
    if (name_to_handle_at(AT_FDCWD, directory, &buffer.handle, &mount_id, 0) != 0) return -errno;
    if (buffer.handle.handle_bytes != sizeof(uint64_t)) return -EINVAL;
    memcpy(id, buffer.handle.f_handle, sizeof(*id));
    return 0;
}

static int set_path(struct unix_path *value, const char *path) {
    size_t length = strlen(path);
    if (length == 0 || length >= SUN_PATH) return -ENAMETOOLONG;
    memset(value, 0, sizeof(*value));
    value->length = (uint32_t)length;
    memcpy(value->path, path, length);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 3 + DOOR_PATHS) {
        fprintf(stderr, "usage: %s OBJECT CGROUP_DIR DOOR_PATH [DOOR_PATH...] (at most %d)\n", argv[0],
                DOOR_PATHS);
        return 64;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    libbpf_set_print(quiet_libbpf);
    struct unix_path doors[DOOR_PATHS];
    memset(doors, 0, sizeof(doors));
    for (int index = 0; index + 3 < argc; index++) {
        if (set_path(&doors[index], argv[index + 3]) != 0) {
            fprintf(stderr, "kcm-route: %s does not fit in sun_path\n", argv[index + 3]);
            return 64;
        }
    }
    struct bpf_object *object = bpf_object__open_file(argv[1], NULL);
    if (!object) {
        fprintf(stderr, "kcm-route: disabled: cannot open %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    struct bpf_program *program = bpf_object__find_program_by_name(object, "kcm_route");
    if (!program) {
        fprintf(stderr, "kcm-route: disabled: no program kcm_route in %s\n", argv[1]);
        return 2;
    }
    bpf_program__set_type(program, BPF_PROG_TYPE_CGROUP_SOCK_ADDR);
    bpf_program__set_expected_attach_type(program, (enum bpf_attach_type)BPF_CGROUP_UNIX_CONNECT_NUMBER);
    int error = bpf_object__load(object);
    if (error) {
        // EINVAL: a kernel before 6.7 (no such attach type or kfunc); EPERM: no CAP_BPF and
        // CAP_NET_ADMIN, or lockdown; ENOENT/ESRCH: no vmlinux BTF or kfunc. The door goes on alone.
        fprintf(stderr, "kcm-route: disabled: the kernel refused the program: %s\n", strerror(-error));
        return 2;
    }
    int cgroup = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgroup < 0) {
        fprintf(stderr, "kcm-route: disabled: cannot open %s: %s\n", argv[2], strerror(errno));
        return 2;
    }
    int link = bpf_link_create(bpf_program__fd(program), cgroup,
                               (enum bpf_attach_type)BPF_CGROUP_UNIX_CONNECT_NUMBER, NULL);
    if (link < 0) {
        fprintf(stderr, "kcm-route: disabled: cannot attach to %s: %s\n", argv[2], strerror(errno));
        return 2;
    }
    int door_map = bpf_object__find_map_fd_by_name(object, "door_path");
    int routes = bpf_object__find_map_fd_by_name(object, "routes");
    int counters = bpf_object__find_map_fd_by_name(object, "counters");
    for (uint32_t index = 0; index < DOOR_PATHS; index++) {
        if (bpf_map_update_elem(door_map, &index, &doors[index], BPF_ANY) != 0) {
            fprintf(stderr, "kcm-route: cannot set the door's paths: %s\n", strerror(errno));
            return 2;
        }
    }
    printf("ready\n");

    char line[4096];
    while (fgets(line, sizeof(line), stdin)) {
        char directory[4096], socket[4096];
        unsigned uid;
        struct route_key key = {0};
        int pid;
        if (sscanf(line, "add %4095s %u %d %4095s", directory, &uid, &pid, socket) == 4) {
            struct unix_path value;
            int failure = cgroup_id(directory, &key.cgroup);
            if (!failure) failure = peer_view(pid, &key);
            if (!failure) failure = set_path(&value, socket);
            key.uid = uid;
            if (!failure && bpf_map_update_elem(routes, &key, &value, BPF_ANY) != 0) failure = -errno;
            if (failure) printf("error: %s\n", strerror(-failure));
            else printf("ok\n");
        } else if (sscanf(line, "del %4095s %u %d", directory, &uid, &pid) == 3) {
            int failure = cgroup_id(directory, &key.cgroup);
            if (!failure) failure = peer_view(pid, &key);
            key.uid = uid;
            if (!failure && bpf_map_delete_elem(routes, &key) != 0) failure = -errno;
            if (failure) printf("error: %s\n", strerror(-failure));
            else printf("ok\n");
        } else if (strncmp(line, "clear", 5) == 0) {
            struct route_key next;
            while (bpf_map_get_next_key(routes, NULL, &next) == 0) bpf_map_delete_elem(routes, &next);
            printf("ok\n");
        } else if (strncmp(line, "stats", 5) == 0) {
            int cpus = libbpf_num_possible_cpus();
            uint64_t values[2][cpus > 0 ? cpus : 1], sums[2] = {0, 0};
            for (uint32_t which = 0; which < 2 && cpus > 0; which++) {
                if (bpf_map_lookup_elem(counters, &which, values[which]) != 0) continue;
                for (int cpu = 0; cpu < cpus; cpu++) sums[which] += values[which][cpu];
            }
            printf("door-path connects %llu rewritten %llu\n", (unsigned long long)sums[0],
                   (unsigned long long)sums[1]);
        } else {
            printf("error: unknown command\n");
        }
    }
    // Stdin closed: the owner is gone. Closing the link detaches the program; the maps go with it.
    close(link);
    bpf_object__close(object);
    return 0;
}
