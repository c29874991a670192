import Foundation
import Synchronization

/// A fixed team of threads for the many short parallel sections of mini-batch training (a
/// gradient over a batch's shares, then the optimiser's passes over touched rows and dense
/// weights, thousands of times per epoch).
///
/// `DispatchQueue.concurrentPerform` wakes a pooled worker for every call, and on this kind of
/// machine that wake-up takes tens to hundreds of microseconds, during which the caller runs
/// alone: sections of 0.3–5 ms lose a large share of their second thread. The team's workers
/// instead wait by watching a counter, so a section starts on every member at once. A worker
/// that has had nothing to do for about a millisecond (between epochs, say) parks on a semaphore
/// and stops using its core until the next section.
///
/// `run` is called from one thread at a time and is not re-entrant. The workers stop when the
/// team is released.
public final class WorkerTeam: @unchecked Sendable {
    /// Members, the calling thread (member 0) included.
    public let size: Int
    private let state: State

    public init(size: Int) {
        self.size = max(1, size)
        state = State(workers: self.size - 1)
        for member in 1..<self.size {
            let state = state, slot = state.slots[member - 1]
            let thread = Thread { state.work(member, slot) }
            thread.name = "funnel-worker-\(member)"
            thread.start()
        }
    }

    deinit { state.stop() }

    /// Calls `body(member)` for every member in 0..<size, concurrently, member 0 on the calling
    /// thread, and returns when all have returned.
    public func run(_ body: (Int) -> Void) {
        if size == 1 { body(0); return }
        withoutActuallyEscaping(body) { body in state.run(body) }
    }

    /// `body(part)` for every part in 0..<parts, concurrently: on `team` when it has members for
    /// all of them, else on Dispatch's pool; on the calling thread alone when `parts` is 1.
    static func perform(_ parts: Int, on team: WorkerTeam?, _ body: @Sendable (Int) -> Void) {
        if parts <= 1 {
            body(0)
        } else if let team, team.size >= parts {
            team.run { member in if member < parts { body(member) } }
        } else {
            DispatchQueue.concurrentPerform(iterations: parts, execute: body)
        }
    }

    /// One worker's parking place.
    final class Slot: @unchecked Sendable {
        let parked = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
    }

    /// What the workers share with the team (they hold this, not the team, so that releasing the
    /// team stops them).
    final class State: @unchecked Sendable {
        let slots: [Slot]
        /// Bumped once per section; a worker runs the section when it sees a value it has not run.
        let epoch = Atomic<Int>(0)
        /// Workers done with the current section.
        let finished = Atomic<Int>(0)
        let stopping = Atomic<Bool>(false)
        let exited = DispatchSemaphore(value: 0)
        /// The current section's body, written before `epoch` is bumped and read after it is seen.
        var body: ((Int) -> Void)?
        /// Spins (loads of `epoch`) before a waiting worker parks: about a millisecond.
        static let spinsBeforeParking = 1 << 18

        init(workers: Int) { slots = (0..<workers).map { _ in Slot() } }

        func run(_ body: @escaping (Int) -> Void) {
            self.body = body
            finished.store(0, ordering: .relaxed)
            epoch.add(1, ordering: .sequentiallyConsistent)
            wakeParked()
            body(0)
            // Wait for the workers; past a short spin, give the core away between looks, in case a
            // worker is waiting for it (more busy threads than cores).
            var spins = 0
            while finished.load(ordering: .acquiring) < slots.count {
                spins += 1
                if spins > 4096 { sched_yield() }
            }
            self.body = nil
        }

        func stop() {
            stopping.store(true, ordering: .sequentiallyConsistent)
            wakeParked()
            for _ in slots { exited.wait() }
        }

        /// Signals every worker that parked (it set `parked` before its last look at `epoch` and
        /// `stopping`, so it either saw the change or is signalled here).
        private func wakeParked() {
            for slot in slots where slot.parked.exchange(false, ordering: .sequentiallyConsistent) { slot.wake.signal() }
        }

        func work(_ member: Int, _ slot: Slot) {
            var seen = 0
            while true {
                var spins = 0
                while epoch.load(ordering: .acquiring) == seen && !stopping.load(ordering: .relaxed) {
                    spins += 1
                    if spins < Self.spinsBeforeParking { continue }
                    spins = 0
                    slot.parked.store(true, ordering: .sequentiallyConsistent)
                    if epoch.load(ordering: .sequentiallyConsistent) == seen && !stopping.load(ordering: .sequentiallyConsistent) {
                        slot.wake.wait()
                    } else if !slot.parked.exchange(false, ordering: .sequentiallyConsistent) {
                        // The team cleared `parked` first and will signal: take that signal.
                        slot.wake.wait()
                    }
                }
                if stopping.load(ordering: .acquiring) { exited.signal(); return }
                seen = epoch.load(ordering: .acquiring)
                body!(member)
                finished.add(1, ordering: .releasing)
            }
        }
    }
}
