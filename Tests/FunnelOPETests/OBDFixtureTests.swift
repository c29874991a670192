import Foundation
import FunnelOPE
import FunnelTestSupport
import Testing

/// IPW and SNIPW on the Open Bandit Dataset sample agree with the reference pipeline (`obp` 0.5.7)
/// to 1e-9 relative (`tools/fixtures/make_obd_fixtures.py` writes `Fixtures/obd_fixtures.json`).
struct OBDFixtureTests {
    static let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    /// The shared data sets: `FUNNEL_SHARED_DATA` when set, else `../shared/data` beside the
    /// repository. When neither holds the Open Bandit sample, the tests fail on the missing file and
    /// the message says which variable to set.
    static let data: URL = {
        if let set = ProcessInfo.processInfo.environment["FUNNEL_SHARED_DATA"] { return URL(fileURLWithPath: set) }
        return here.appendingPathComponent("../../../shared/data").standardized
    }()

    struct Case: Sendable, CustomStringConvertible {
        var campaign: String, logging: String, evaluation: String, logFile: String, policyFile: String?
        var ipw: Double, snipw: Double, ess: Double, maxWeight: Double, meanWeight: Double
        var description: String { "\(campaign): \(evaluation) from \(logging) logs" }
    }

    static func load() throws -> [Case] {
        let fixture = try JSONFixture.load(here.appendingPathComponent("Fixtures/obd_fixtures.json"))
        return try fixture.objects("cases").map { c in
            let evaluation = try c.string("evaluation_policy")
            return Case(campaign: try c.string("campaign"), logging: try c.string("logging_policy"), evaluation: evaluation,
                        logFile: try c.string("log_file"), policyFile: evaluation == "bts" ? c["action_dist_file"] as? String : nil,
                        ipw: try c.double("ipw"), snipw: try c.double("snipw"), ess: try c.double("ess"),
                        maxWeight: try c.double("max_weight"), meanWeight: try c.double("mean_weight"))
        }
    }

    /// The cases, for the parameterised test (an unreadable fixture fails `fixtureReads`).
    static let cases: [Case] = (try? load()) ?? []

    @Test func fixtureReads() throws {
        #expect(try Self.load().count >= 4)
    }

    func close(_ a: Double?, _ b: Double, _ what: String) {
        guard let a else { Issue.record("\(what) is undefined"); return }
        #expect(abs(a - b) <= 1e-9 * abs(b), "\(what): \(a) vs \(b)")
    }

    @Test("IPW, SNIPW and weight diagnostics match obp", arguments: cases)
    func matchesReferencePipeline(_ c: Case) throws {
        let logPath = Self.data.appendingPathComponent(c.logFile).path
        try #require(FileManager.default.fileExists(atPath: logPath),
                     "\(logPath) is missing: point FUNNEL_SHARED_DATA at the shared data sets (the directory holding obd/)")
        let logs = try LoggedBandit.readOBD(path: logPath)
        let policy = try c.policyFile.map { try EvaluationPolicy.read(path: Self.data.appendingPathComponent($0).path, for: logs) } ?? .uniform(for: logs)
        let inputs = OffPolicy.Inputs(weights: OffPolicy.weights(logs, policy), rewards: logs.rewards, qLogged: nil, qExpected: nil)
        close(OffPolicy.estimate(.ipw, inputs), c.ipw, "ipw \(c)")
        close(OffPolicy.estimate(.snipw, inputs), c.snipw, "snipw \(c)")
        let d = OffPolicy.diagnostics(inputs)
        close(d.ess, c.ess, "ess \(c)")
        close(d.maxWeight, c.maxWeight, "max weight \(c)")
        close(d.meanWeight, c.meanWeight, "mean weight \(c)")
        // The women campaign's BTS logs hold a row with propensity 1e-6: the diagnostics must warn.
        if c.campaign == "women" && c.logging == "bts" { #expect(!d.warnings.isEmpty) }
    }
}

struct EstimatorByHandTests {
    /// Three rounds, hand-worked: w = [2, 0.5, 1], r = [1, 0, 1], q̂ = [0.5, 0.5, 0.5], Σπq̂ = [0.4, 0.4, 0.4].
    /// ipw = (2 + 0 + 1)/3 = 1; snipw = 3/3.5; dm = 0.4; dr = 0.4 + (2·0.5 − 0.5·0.5 + 1·0.5)/3 = 0.4 + 1.25/3.
    let x = OffPolicy.Inputs(weights: [2, 0.5, 1], rewards: [1, 0, 1], qLogged: [0.5, 0.5, 0.5], qExpected: [0.4, 0.4, 0.4])

    @Test func estimators() {
        #expect(OffPolicy.estimate(.ipw, x) == 1)
        #expect(abs(OffPolicy.estimate(.snipw, x)! - 3 / 3.5) < 1e-15)
        #expect(abs(OffPolicy.estimate(.dm, x)! - 0.4) < 1e-15)
        #expect(abs(OffPolicy.estimate(.dr, x)! - (0.4 + 1.25 / 3)) < 1e-15)
        // mean w = 3.5/3: sndr = 0.4 + (1.25/(3.5/3))/3
        #expect(abs(OffPolicy.estimate(.sndr, x)! - (0.4 + 1.25 / 3.5)) < 1e-15)
        var s = OffPolicy.Settings()
        s.switchTau = 1.5   // drops round 0's correction: 0.4 + (−0.25 + 0.5)/3
        #expect(abs(OffPolicy.estimate(.switchDR, x, settings: s)! - (0.4 + 0.25 / 3)) < 1e-15)
        s.drosLambda = 4    // w̃ = 4w/(w²+4) = [1, 2/4.25·... ]
        let wt = [2.0, 0.5, 1.0].map { 4 * $0 / ($0 * $0 + 4) }
        let expected = 0.4 + (wt[0] * 0.5 + wt[1] * -0.5 + wt[2] * 0.5) / 3
        #expect(abs(OffPolicy.estimate(.dros, x, settings: s)! - expected) < 1e-15)
    }
}

final class PolicyFileTests {
    /// A directory of this test's own, removed when the test ends.
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("funnel-policy-\(UUID().uuidString)")

    init() throws { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(at: dir) }

    func write(_ text: String) -> String {
        let path = dir.appendingPathComponent("\(UUID().uuidString).csv").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    /// Evaluating the logging policy itself gives weights of 1: IPW = the logged mean reward.
    @Test func perRequestPolicyEqualToTheLoggingPolicy() throws {
        let data = LoggedBandit(items: ["a", "b"], actions: [0, 1, 1, 0], positions: [0, 1, 0, 1], rewards: [1, 0, 0, 0],
                                propensities: [0.5, 0.5, 0.5, 0.5], requestIDs: ["r1", "r1", "r2", "r2"])
        let policy = try EvaluationPolicy.read(path: write("request_id,item_id,position,probability\nr1,a,1,0.5\nr1,b,1,0.5\nr1,a,2,0.5\nr1,b,2,0.5\nr2,a,1,0.5\nr2,b,1,0.5\nr2,a,2,0.5\nr2,b,2,0.5\n"), for: data)
        let x = OffPolicy.Inputs(weights: OffPolicy.weights(data, policy), rewards: data.rewards, qLogged: nil, qExpected: nil)
        #expect(x.weights == [1, 1, 1, 1])
        #expect(OffPolicy.estimate(.ipw, x) == 0.25)
    }

    @Test func badPolicyFilesNameTheLine() {
        let data = LoggedBandit(items: ["a", "b"], actions: [0], positions: [0], rewards: [1], propensities: [0.5], requestIDs: nil)
        #expect(throws: OPEError.self) { try EvaluationPolicy.read(path: write("item_id,position,probability\na,1,0.7\nb,1,0.7\n"), for: data) }
        #expect(throws: OPEError.self) { try EvaluationPolicy.read(path: write("item_id,position,probability\nzz,1,1\n"), for: data) }
        #expect(throws: OPEError.self) { try EvaluationPolicy.read(path: write("item_id,position,probability\na,0,1\n"), for: data) }
    }
}
