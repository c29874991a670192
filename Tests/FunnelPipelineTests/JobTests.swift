import Foundation
import FunnelBase
import FunnelConfig
import FunnelEvents
import FunnelOPE
@testable import FunnelPipeline
import FunnelTestSupport
import Testing

/// The pipeline's jobs from files, as the command line and a server call them, on hand-worked logs.
/// Threads, processes or long loops: a hang fails the test instead of stalling the run.
@Suite(.timeLimit(.minutes(5)))
struct JobTests {
    /// A log with one analysed user, a leaked user, a round before the exposure, an impression naming
    /// the other variant, and four unassigned users in shuffled traffic.
    static func leakyLog() -> LogBuilder {
        var b = LogBuilder()
        let random = #","context":{"ranker":"random"}"#
        b.exposure("c", 100, variant: "control")
        b.exposure("leak", 100, variant: "control")
        b.exposure("leak", 200, variant: "treatment")
        b.impression("c", 50, item: "z", extra: random)                       // before the exposure
        b.impression("c", 150, item: "a", position: 2, extra: random)
        let again = b.impression("c", 160, item: "a", position: 1, extra: random)
        b.impression("c", 170, item: "b", extra: #","experiment":"exp","variant":"treatment","context":{"ranker":"random"}"#)
        b.impression("leak", 300, item: "a", extra: random)
        b.click("c", 165, on: again)
        for (k, clicks) in [(1, [true, true]), (2, [true, false]), (3, [false, false]), (4, [false, false])] {
            for (p, clicked) in clicks.enumerated() {
                let i = b.impression("u\(k)", 10, item: "x\(p)", position: p + 1, extra: random)
                if clicked { b.click("u\(k)", 11, on: i) }
            }
        }
        return b
    }

    /// `funnel position-bias` groups rounds as the report assigns users (rule 7): only c's two
    /// rounds after its exposure are the control's; the leaked user's, the early one, the mismatched
    /// one and the unassigned users' rounds are "(not analysed)".
    @Test func positionBiasJobGroupsAsTheReport() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = try folder.write("events.jsonl", Self.leakyLog().lines.joined(separator: "\n"))
        var job = PositionBiasJob(source: EventSource(paths: [path]))
        job.method = .randomized
        job.maxPosition = 2
        job.randomized = "ranker=random"
        let result = try job.run()
        #expect(result.rounds == 13)
        #expect(result.groups.map(\.name) == ["control", "(not analysed)"])
        #expect(result.groups[0].ctr.impressions == 2 && result.groups[0].ctr.clicks == 1)
        #expect(result.groups[1].ctr.impressions == 11 && result.groups[1].ctr.clicks == 3)
        // Position 1: z, again, b, leak's a and u1…u4's first rounds = 8, 3 clicked (again, u1, u2);
        // position 2: c's first a and u1…u4's second rounds = 5, 1 clicked (u1).
        #expect(result.estimate.impressions == [8, 5] && result.estimate.clicks == [3, 1])
        #expect(abs(result.estimate.propensities[1] - (1.0 / 5) / (3.0 / 8)) < 1e-12)
    }

    /// The report job reads the files, the configuration and the cohorts; the leaked user is not
    /// counted in a variant.
    @Test func reportJobFromFiles() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let events = try folder.write("events.jsonl", Self.leakyLog().lines.joined(separator: "\n"))
        let items = try folder.write("items.csv", "\u{FEFF}item_id,cohort\r\n\"a\",\"top, popular\"\r\nb,tail\r\n\r\nq,unused\r\n")
        let doc = try ReportJob(source: EventSource(paths: [events]), itemsPath: items).run()
        #expect(doc["variants"]?["control"]?["users"] == .int(1))
        #expect(doc["data_quality"]?["leaked_users"] == .int(1))
        let cohorts = try loadCohorts(path: items)
        #expect(cohorts.catalogSize == 3)
        #expect(cohorts.cohorts.count == 3)
        #expect(cohorts.cohorts["a"] == "top, popular")
        #expect(cohorts.cohorts["q"] == "unused")
    }

    @Test func cohortFilesNameTheirProblems() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        for (text, message) in [("id,cohort\na,x\n", "line 1: the header must name item_id"),
                                ("item_id,cohort\na,x\n\"b\"c,y\n", "line 3: text after the closing quote"),
                                ("item_id,cohort,size\na\n", "line 2: expected 3 cells, found 1"),
                                ("", "the file is empty")] {
            let path = try folder.write("items.csv", text)
            do {
                _ = try loadCohorts(path: path)
                Issue.record("read \(text)")
            } catch {
                #expect(error.description.hasPrefix("--items \(path)"), "\(error)")
                #expect(error.description.contains(message), "\(error)")
            }
        }
    }

    /// Two rounds logged with propensity 0.5: a (clicked) and b; the evaluation policy always shows
    /// a. IPW = (1/0.5 · 1 + 0) / 2 = 1; SNIPW = 2 / 2 = 1.
    @Test func offPolicyJobByHand() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var b = LogBuilder()
        let i = b.impression("u1", 10, item: "a", extra: #","propensity":0.5"#)
        b.click("u1", 12, on: i)
        b.impression("u2", 10, item: "b", extra: #","propensity":0.5"#)
        let logs = try folder.write("logs.jsonl", b.lines.joined(separator: "\n"))
        let policy = try folder.write("policy.csv", "item_id,position,probability\na,1,1\nb,1,0\n")
        var job = OffPolicyJob(logs: logs, policy: policy)
        job.estimators = [.ipw, .snipw]
        job.bootstrap = 0
        let result = try job.run()
        #expect(result.rounds == 2 && result.loggedValue == 0.5)
        #expect(result.estimates.map(\.estimator) == [.ipw, .snipw])
        #expect(result.estimates.map(\.value) == [1, 1])
        #expect(result.collapsed == 0)
    }

    @Test func trainingOnALogWithoutRoundsSaysSo() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var b = LogBuilder()
        b.exposure("u", 1)
        let events = try folder.write("events.jsonl", b.lines.joined(separator: "\n"))
        var job = TrainJob(data: events)
        job.dataFormat = .funnel
        do {
            _ = try job.run()
            Issue.record("trained on no rows")
        } catch {
            #expect(error.description.contains("\(events): no rounds"))
        }
    }
}

/// A calibration is reported over every simulation it asked for, or not at all.
struct SimulationRunnerTests {
    @Test func oneFailedSimulationFailsTheRun() {
        do {
            _ = try runSimulations(10) { (k) throws(PipelineError) -> Int in
                if k == 3 || k == 7 { throw PipelineError("seed \(k) gave no round") }
                return k
            }
            Issue.record("a run with failed simulations was reported")
        } catch {
            #expect(error.description == "2 of 10 simulations failed, so no result is reported; the first: seed 3 gave no round")
        }
    }

    @Test func everyOutcomeInOrder() throws {
        let outcomes = try runSimulations(25) { (k) throws(PipelineError) -> Int in k * k }
        #expect(outcomes == (0..<25).map { $0 * $0 })
    }
}
