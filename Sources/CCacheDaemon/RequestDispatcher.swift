import CredentialStore
import KCM

/// Applies one routed request (``RequestRoute``) and returns its reply: the one exhaustive
/// `switch` over the store's operations, and the one over the daemon's own, which it asks of a
/// ``DaemonOperations``. Pure: no I/O, no clock, no locking (for a store operation the caller holds
/// the store's lock), so it is tested and fuzzed in-process.
public enum RequestDispatcher {
    /// Applies a store operation (``RequestRoute/store(_:)``) to `store`. `applied` is told of each
    /// request the store applied without an error (its empty names resolved): the daemon's state
    /// journal records it.
    public static func perform(
        _ request: KCMRequest, store: CredentialStore, applied: (KCMRequest, CredentialStore) -> Void = { _, _ in }
    ) throws(RequestFailure) -> KCMReply {
        if case .retrieve(let name, let flags, _) = request, let offset = clientClockOffset(name, flags, store) {
            throw .retrieveFromSkewedCache(kdcOffset: offset)
        }
        do {
            let resolved = defaultingEmptyNames(in: request, to: store.defaultName)
            let reply = try apply(resolved, store: store)
            applied(resolved, store)
            return reply
        } catch {
            throw .store(error)
        }
    }

    /// Answers one of the daemon's own operations (``RequestRoute/daemon(_:)``) from `daemon`.
    static func perform(_ operation: DaemonOperation, daemon: some DaemonOperations) -> KCMReply {
        switch operation {
        case .status: .daemonStatus(daemon.status())
        case .renewalState: .renewalState(daemon.renewalState())
        // The session asks the daemon to stop once this reply is sent.
        case .stop: .stopping(pid: daemon.processID)
        case .attachSession: .attachedSessions(UInt32(clamping: daemon.attachSession()))
        case .detachSession: .attachedSessions(UInt32(clamping: daemon.detachSession()))
        }
    }

    /// The KDC time offset of the cache an MIT client's RETRIEVE names, when it is not zero.
    ///
    /// MIT's KCM client loads a cache's offset into its context only when it iterates the cache
    /// (`kcm_start_seq_get`), never for RETRIEVE: a ticket found by RETRIEVE is then used with the
    /// client's own, skewed clock, and the KDC answers "Clock skew too great". For such a cache a
    /// RETRIEVE is answered KRB5_CC_NOSUPP, on which MIT (1.20+) falls back to iterating, which
    /// applies the offset. Only MIT sets ``KCMMatchFlags/cached`` (on every RETRIEVE); Heimdal's
    /// client has no fallback and reads no offset, so it keeps getting its answer.
    static func clientClockOffset(_ name: KCMCacheName, _ flags: KCMMatchFlags, _ store: CredentialStore) -> Int32? {
        guard flags.contains(.cached) else { return nil }
        let resolved = name.bytes.isEmpty ? store.defaultName : name
        guard let offset = try? store.cache(named: resolved).kdcOffset, offset != 0 else { return nil }
        return offset
    }

    /// Heimdal's client sends the empty name for `KRB5CCNAME=KCM:` (MIT asks GET_DEFAULT_CACHE
    /// first): the empty name means the default cache. Heimdal's own kcm answers "no such cache"
    /// there instead. SET_DEFAULT_CACHE keeps refusing it: the empty name cannot be a default.
    static func defaultingEmptyNames(in request: KCMRequest, to defaultName: KCMCacheName) -> KCMRequest {
        func resolved(_ name: KCMCacheName) -> KCMCacheName { name.bytes.isEmpty ? defaultName : name }
        switch request {
        case .initialize(let name, let principal): return .initialize(name: resolved(name), principal: principal)
        case .destroy(let name): return .destroy(name: resolved(name))
        case .store(let name, let credential): return .store(name: resolved(name), credential: credential)
        case .retrieve(let name, let flags, let template):
            return .retrieve(name: resolved(name), flags: flags, template: template)
        case .getPrincipal(let name): return .getPrincipal(name: resolved(name))
        case .getCredUUIDList(let name): return .getCredUUIDList(name: resolved(name))
        case .getCredByUUID(let name, let uuid): return .getCredByUUID(name: resolved(name), uuid: uuid)
        case .removeCred(let name, let flags, let template):
            return .removeCred(name: resolved(name), flags: flags, template: template)
        case .setFlags(let name, let flags): return .setFlags(name: resolved(name), flags: flags)
        case .moveCache(let from, let to): return .moveCache(from: resolved(from), to: resolved(to))
        case .getKDCOffset(let name): return .getKDCOffset(name: resolved(name))
        case .setKDCOffset(let name, let offset): return .setKDCOffset(name: resolved(name), offset: offset)
        case .getCredList(let name): return .getCredList(name: resolved(name))
        case .replace(let name, let offset, let principal, let credentials):
            return .replace(name: resolved(name), kdcOffset: offset, principal: principal, credentials: credentials)
        case .noop, .genNew, .getCacheUUIDList, .getCacheByUUID, .getDefaultCache, .setDefaultCache, .daemonStatus,
            .stop, .attachSession, .detachSession, .watch, .renew, .renewalState, .unsupported:
            return request
        }
    }

    private static func apply(_ request: KCMRequest, store: CredentialStore) throws(CredentialStoreError) -> KCMReply {
        switch request {
        case .noop:
            return .empty
        case .genNew:
            return .name(store.generateName())
        case .initialize(let name, let principal):
            try store.initialize(name, principal: principal)
        case .destroy(let name):
            try store.destroy(name)
        case .store(let name, let credential):
            try store.store(credential, in: name)
        case .retrieve(let name, let flags, let template):
            let matcher = CredentialMatcher(flags: flags, template: template)
            return .credential(try store.retrieve(from: name, matching: matcher))
        case .getPrincipal(let name):
            return .principal(try store.cache(named: name).principal)
        case .getCredUUIDList(let name):
            return .uuids(try store.cache(named: name).credentials.uuids)
        case .getCredByUUID(let name, let uuid):
            return .credential(try store.credential(in: name, uuid: uuid))
        case .removeCred(let name, let flags, let template):
            try store.removeCredentials(from: name, matching: CredentialMatcher(flags: flags, template: template))
        case .setFlags(let name, _):
            _ = try store.cache(named: name)
        case .moveCache(let from, let to):
            try store.move(from: from, to: to)
        case .getCacheUUIDList:
            return .uuids(store.cacheUUIDs)
        case .getCacheByUUID(let uuid):
            return .name(try store.cacheName(uuid: uuid))
        case .getDefaultCache:
            return .name(store.defaultName)
        case .setDefaultCache(let name):
            try store.setDefault(name)
        case .getKDCOffset(let name):
            return .kdcOffset(try store.cache(named: name).kdcOffset)
        case .setKDCOffset(let name, let offset):
            try store.cache(named: name).kdcOffset = offset
        case .getCredList(let name):
            // The stored values themselves: the reply refers to their secure bytes.
            let list = try store.cache(named: name).credentials
            var credentials: [KCMCredential] = []
            credentials.reserveCapacity(list.count)
            list.forEach { credentials.append($0.credential) }
            return .credentialList(credentials)
        case .replace(let name, let kdcOffset, let principal, let credentials):
            try store.replace(name, principal: principal, kdcOffset: kdcOffset, credentials: credentials)
        case .daemonStatus, .renewalState, .stop, .attachSession, .detachSession, .watch, .renew, .unsupported:
            // Not operations on the store: RequestRoute sends none of them here.
            return .empty
        }
        return .empty
    }
}
