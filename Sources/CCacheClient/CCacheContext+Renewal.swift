import KCM

extension CCacheContext {
    /// Waits (up to `timeoutMilliseconds`, which the daemon caps at 5 minutes) for the changes after
    /// `after` in `epoch` and returns them: one CCACHED_WATCH round trip. Epoch 0 answers at once
    /// with *resync* and the current counter, which is how a watcher starts. The context's connection
    /// is busy for the whole wait: watch on a context of its own.
    public func changes(epoch: UInt64, after: UInt64, timeoutMilliseconds: UInt32) throws(CCacheClientError)
        -> KCMWatch.Reply
    {
        let request = KCMRequest.watch(
            KCMWatch.Request(epoch: epoch, after: after, timeoutMilliseconds: timeoutMilliseconds))
        return try decoded(call(request, operation: "watch"), operation: "watch") { r throws(KCMDecodingError) in
            try r.asWatchReply()
        }
    }

    /// Watches the collection until `handle` returns false: calls it first with a *resync* reply
    /// (read the collection now), then with every reply that carries changes or asks for a resync
    /// (the daemon restarted, or the watcher fell more than 256 changes behind). Waits without
    /// polling: each round trip sleeps in the daemon until a change or `timeoutMilliseconds`.
    public func watchChanges(
        timeoutMilliseconds: UInt32 = 60_000, _ handle: (KCMWatch.Reply) -> Bool
    ) throws(CCacheClientError) {
        var epoch: UInt64 = 0
        var after: UInt64 = 0
        while true {
            let reply = try changes(epoch: epoch, after: after, timeoutMilliseconds: timeoutMilliseconds)
            let news = reply.resync || !reply.events.isEmpty || reply.epoch != epoch
            epoch = reply.epoch
            after = reply.next
            if news, !handle(reply) { return }
        }
    }

    /// Renews the renewable tickets of `cache` (every cache when nil) now and returns, per cache,
    /// what happened (CCACHED_RENEW). Waits for the KDC: up to about 27 s per ticket when it is silent.
    public func renew(cache: KCMCacheName? = nil) throws(CCacheClientError) -> [KCMRenew.CacheResult] {
        let request = KCMRequest.renew(KCMRenew.Request(cacheName: cache))
        return try decoded(call(request, operation: "renew"), operation: "renew") { r throws(KCMDecodingError) in
            try r.asRenewReply()
        }.results
    }

    /// The renewal worker's state and, per cache holding tickets, its next and last renewal.
    public func renewalState() throws(CCacheClientError) -> KCMRenewalState {
        try decoded(call(.renewalState, operation: "renewal state"), operation: "renewal state") {
            r throws(KCMDecodingError) in try r.asRenewalState()
        }
    }
}
