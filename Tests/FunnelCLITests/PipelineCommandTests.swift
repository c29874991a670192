import ArgumentParser
import Foundation
import FunnelModels
import FunnelTestSupport
import Testing
@testable import funnel

/// Every other command in-process, on a simulated log whose truth is known: simulate writes the
/// log and its truth, report recovers the truth's counts, validate exits 1 on the traps, and the
/// position-bias, off-policy, training-table, train, evaluate and predict commands run on it.
@Suite(.timeLimit(.minutes(5)))
struct PipelineCommandTests {
    static func json(_ path: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    @Test func simulateThenReportRecoversTheTruth() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let events = folder.path + "/events.jsonl", truth = folder.path + "/truth.json", report = folder.path + "/report.json"
        try Simulate.parse(["--scenario", "clickbait", "--users", "300", "--seed", "5", "--out", events, "--truth", truth]).run()
        try Report.parse(["--events", events, "--format", "json", "--output", report]).run()
        let t = try Self.json(truth), r = try Self.json(report)
        let truthVariants = try #require(t["variants"] as? [String: [String: Any]])
        let reportVariants = try #require(r["variants"] as? [String: [String: Any]])
        for (name, counts) in truthVariants {
            for key in ["users", "impressions", "clicks", "purchases", "orders"] {
                #expect(reportVariants[name]?[key] as? Int == counts[key] as? Int, "\(name) \(key)")
            }
        }
        // The simulator writes traps: validate reports them and exits 1.
        #expect(throws: ExitCode.self) { try Validate.parse(["--events", events, "--examples", "1"]).run() }
    }

    /// The selection-bias table: impressions and truth row for row, a purchase only with a click,
    /// the click models train on it as a CSV table, and --policies is refused for it.
    @Test func selectionBiasTableAndTruth() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let table = folder.path + "/impressions.csv", truth = folder.path + "/truth.csv"
        try Simulate.parse(["--scenario", "selection-bias", "--users", "400", "--seed", "3", "--out", table, "--truth", truth]).run()
        let rows = try String(contentsOfFile: table, encoding: .utf8).split(separator: "\n")
        let truths = try String(contentsOfFile: truth, encoding: .utf8).split(separator: "\n")
        #expect(rows.first == "click,purchase,user_segment,item_id,category,price_bucket,position,device")
        #expect(truths.first == "p_click,p_cvr,convert_if_clicked")
        #expect(rows.count == truths.count && rows.count > 400 * 8)
        #expect(!rows.contains { $0.hasPrefix("0,1,") })
        let model = folder.path + "/lr.json"
        try Train.parse(["--data", table, "--data-format", "csv", "--label", "click", "--categorical",
                         "user_segment,item_id,category,price_bucket,position,device", "--model", "lr", "--out", model]).run()
        #expect(FileManager.default.fileExists(atPath: model))
        #expect(throws: (any Error).self) {
            try Simulate.parse(["--scenario", "selection-bias", "--users", "10", "--out", table, "--policies", folder.path + "/p"]).validate()
        }
    }

    /// A conversion model from the command line: trained on the selection-bias table, evaluated
    /// per head with the truth, its three probabilities written per row; the options it needs are asked for.
    @Test func conversionModelTrainEvaluatePredict() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let table = folder.path + "/impressions.csv", truth = folder.path + "/truth.csv", model = folder.path + "/esmm.json"
        try Simulate.parse(["--scenario", "selection-bias", "--users", "300", "--seed", "5", "--out", table, "--truth", truth]).run()
        let columns = "user_segment,item_id,category,price_bucket,position,device"
        try Train.parse(["--data", table, "--valid", table, "--label", "click", "--conversion-label", "purchase", "--categorical", columns,
                         "--model", "escm2-dr", "--hidden", "8", "--max-epochs", "2", "--out", model]).run()
        let file = try ModelFile.read(path: model)
        #expect(file.model == "escm2-dr" && file.architecture?.towers == 3 && file.conversion?.kind == .escm2DR && file.spec.conversionLabel == "purchase")
        try Evaluate.parse(["--model", model, "--data", table, "--truth", truth, "--format", "json"]).run()
        let predictions = folder.path + "/p.csv"
        try Predict.parse(["--model", model, "--data", table, "--out", predictions]).run()
        let lines = try String(contentsOfFile: predictions, encoding: .utf8).split(separator: "\n")
        let rows = try String(contentsOfFile: table, encoding: .utf8).split(separator: "\n").count - 1
        #expect(lines.first == "p_ctr,p_cvr,p_ctcvr" && lines.count - 1 == rows)
        for line in lines.dropFirst() {
            let p = line.split(separator: ",").compactMap { Double($0) }
            #expect(p.count == 3 && p.allSatisfy { $0 > 0 && $0 < 1 } && abs(p[2] - p[0] * p[1]) < 1e-7 * max(p[2], 1e-3), "\(line)")
        }
        // A truth file of other rows is refused, with what to do.
        let other = folder.path + "/other-truth.csv"
        try Simulate.parse(["--scenario", "selection-bias", "--users", "30", "--seed", "6", "--out", folder.path + "/o.csv", "--truth", other]).run()
        #expect(throws: (any Error).self) { try Evaluate.parse(["--model", model, "--data", table, "--truth", other]).run() }
        // From Funnel events: the training table's purchase column is the conversion label.
        let events = folder.path + "/events.jsonl", fromEvents = folder.path + "/events-esmm.json"
        try Simulate.parse(["--scenario", "clickbait", "--users", "300", "--seed", "4", "--out", events]).run()
        try Train.parse(["--data", events, "--data-format", "funnel", "--conversion-label", "purchase", "--model", "esmm", "--hidden", "8",
                         "--epochs", "1", "--out", fromEvents]).run()
        #expect(try ModelFile.read(path: fromEvents).spec.conversionLabel == "purchase")
        try Evaluate.parse(["--model", fromEvents, "--data", events, "--format", "json"]).run()
        #expect(throws: (any Error).self) {
            _ = try Train.parse(["--data", events, "--data-format", "funnel", "--conversion-label", "cart", "--model", "esmm", "--out", fromEvents])
        }
        // A conversion model needs its conversion label; a click model takes none.
        #expect(throws: (any Error).self) { _ = try Train.parse(["--data", table, "--categorical", columns, "--model", "esmm", "--out", model]) }
        #expect(throws: (any Error).self) {
            _ = try Train.parse(["--data", table, "--categorical", columns, "--model", "lr", "--conversion-label", "purchase", "--out", model])
        }
    }

    @Test func positionBiasOffPolicyAndModelsFromEvents() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let events = folder.path + "/events.jsonl", policies = folder.path + "/policies"
        try Simulate.parse(["--scenario", "position-bias", "--users", "400", "--seed", "9", "--out", events, "--policies", policies]).run()
        try PositionBiasCommand.parse(["--events", events, "--method", "randomized", "--bootstrap", "0",
                                       "--items-out", folder.path + "/items.csv"]).run()
        let items = try String(contentsOfFile: folder.path + "/items.csv", encoding: .utf8)
        #expect(items.hasPrefix("variant,item_id,impressions,clicks,ctr,ips_ctr\n"))
        // The logging policy evaluated on its own logs: every weight is 1.
        try OPE.parse(["--logs", events, "--policy", policies + "/logging_policy.csv", "--estimators", "ipw,snipw",
                       "--bootstrap", "0"]).run()
        let table = folder.path + "/training.csv"
        try ExportTraining.parse(["--events", events, "--out", table]).run()
        let header = try #require(try String(contentsOfFile: table, encoding: .utf8).split(separator: "\n").first)
        #expect(header.hasPrefix("click,"))
        let model = folder.path + "/model.json"
        try Train.parse(["--data", events, "--data-format", "funnel", "--model", "lr", "--out", model]).run()
        try Evaluate.parse(["--model", model, "--data", events, "--format", "json"]).run()
        let predictions = folder.path + "/p.csv"
        try Predict.parse(["--model", model, "--data", events, "--out", predictions]).run()
        let lines = try String(contentsOfFile: predictions, encoding: .utf8).split(separator: "\n")
        let rows = try String(contentsOfFile: table, encoding: .utf8).split(separator: "\n").count - 1
        #expect(lines.first == "probability" && lines.count - 1 == rows)
        #expect(lines.dropFirst().allSatisfy { Double($0).map { $0 > 0 && $0 < 1 } ?? false })
    }

    @Test func calibrateOPEReportsTheSimulationsItRan() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let out = folder.path + "/ope.json"
        try CalibrateOPE.parse(["--simulations", "10", "--users", "150", "--bootstrap", "50", "--output", out]).run()
        let doc = try Self.json(out)
        #expect(doc["simulations"] as? Int == 10)
        #expect(doc["rounds_match_truth"] as? Bool == true)
    }
}
