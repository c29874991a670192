import Foundation
@testable import FunnelModels
import Synchronization
import Testing

/// The training threads' team: every member runs every section exactly once, member 0 on the
/// caller, the members at the same time, after idle spells long enough to park the workers, and
/// a released team's workers exit.
/// Threads, processes or long loops: a hang fails the test instead of stalling the run.
@Suite(.timeLimit(.minutes(5)))
struct WorkerTeamTests {
    /// Counts per member, written by the members themselves (each its own slot).
    final class Counts: @unchecked Sendable {
        var runs: [Int]
        init(_ n: Int) { runs = [Int](repeating: 0, count: n * 16) }
    }

    @Test func everyMemberRunsEverySectionOnce() {
        let team = WorkerTeam(size: 3), counts = Counts(3)
        for _ in 0..<1_000 { team.run { member in counts.runs[member * 16] += 1 } }
        #expect((0..<3).map { counts.runs[$0 * 16] } == [1_000, 1_000, 1_000])
    }

    @Test func memberZeroIsTheCallerAndTheOthersAreNot() {
        let team = WorkerTeam(size: 2)
        let caller = Thread.current, onCaller = Counts(2)
        for _ in 0..<100 { team.run { member in if Thread.current == caller { onCaller.runs[member * 16] += 1 } } }
        #expect(onCaller.runs[0] == 100 && onCaller.runs[16] == 0)
    }

    /// Each member waits until all have arrived: it only returns if they run at the same time.
    @Test func membersRunConcurrently() {
        let team = WorkerTeam(size: 2), arrived = Atomic<Int>(0)
        for round in 1...200 {
            team.run { _ in
                arrived.add(1, ordering: .sequentiallyConsistent)
                while arrived.load(ordering: .sequentiallyConsistent) < 2 * round {}
            }
        }
        #expect(arrived.load(ordering: .sequentiallyConsistent) == 400)
    }

    /// Sections after idle spells (20 ms, long past the spinning budget) wake parked workers.
    @Test func parkedWorkersWakeForTheNextSection() {
        let team = WorkerTeam(size: 2), counts = Counts(2)
        for _ in 0..<10 {
            Thread.sleep(forTimeInterval: 0.02)
            team.run { member in counts.runs[member * 16] += 1 }
        }
        #expect(counts.runs[0] == 10 && counts.runs[16] == 10)
    }

    /// Releasing a team stops its workers, whether they spin or have parked.
    @Test func releasedTeamsStop() {
        for k in 0..<40 {
            let team = WorkerTeam(size: 2), counts = Counts(2)
            team.run { member in counts.runs[member * 16] += 1 }
            if k % 2 == 1 { Thread.sleep(forTimeInterval: 0.005) }
            #expect(counts.runs[16] == 1)
        }
    }

    /// More parts than members go to Dispatch; one part runs on the caller.
    @Test func performCoversEveryPart() {
        let team = WorkerTeam(size: 2)
        for parts in [1, 2, 5] {
            let counts = Counts(parts)
            WorkerTeam.perform(parts, on: team) { p in counts.runs[p * 16] += 1 }
            #expect((0..<parts).allSatisfy { counts.runs[$0 * 16] == 1 })
        }
    }
}
