import Foundation

/// Commits concurrent requests' batches together: a request waits while the commit before it is
/// written, and every batch that arrived meanwhile goes into the next transaction, so durability
/// costs one disk flush per commit, not one per request. A request is answered only after the
/// transaction holding its events is durable.
public final class GroupCommitter: @unchecked Sendable {
    let store: any EventStore
    let lock = NSLock()
    var pending: [(IngestBatch, CheckedContinuation<CommitOutcome, any Error>)] = []
    var writing = false
    let queue = DispatchQueue(label: "funnel.commit")
    /// Called after each commit with its batch count, event count and duration in seconds.
    let onCommit: @Sendable (Int, Int, Double) -> Void

    public init(store: any EventStore, onCommit: @escaping @Sendable (Int, Int, Double) -> Void = { _, _, _ in }) {
        self.store = store
        self.onCommit = onCommit
    }

    /// Commits `batch` (with whatever else is waiting) and returns its outcome once durable.
    public func submit(_ batch: IngestBatch) async throws -> CommitOutcome {
        try await withCheckedThrowingContinuation { continuation in
            lock.lock()
            pending.append((batch, continuation))
            let start = !writing
            writing = true
            lock.unlock()
            if start { queue.async { self.drain() } }
        }
    }

    /// Writes until nothing waits.
    func drain() {
        while true {
            lock.lock()
            let work = pending
            pending = []
            if work.isEmpty {
                writing = false
                lock.unlock()
                return
            }
            lock.unlock()
            let started = Date()
            do {
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                let outcomes = try store.commit(work.map(\.0), receivedAt: now)
                onCommit(work.count, work.reduce(0) { $0 + $1.0.events.count + $1.0.quarantined.count }, Date().timeIntervalSince(started))
                for (k, item) in work.enumerated() { item.1.resume(returning: outcomes[k]) }
            } catch {
                for item in work { item.1.resume(throwing: error) }
            }
        }
    }
}
