import ArgumentParser
import Foundation
import FunnelTestSupport
import Testing
@testable import funnel

/// The commands in-process: options parsed and validated by the argument parser, the job run, the
/// output written.
/// Threads, processes or long loops: a hang fails the test instead of stalling the run.
@Suite(.timeLimit(.minutes(5)))
struct CommandTests {
    @Test("options with a fixed set of values are checked and listed by the parser")
    func enumeratedOptions() {
        #expect(throws: (any Error).self) { try Train.parse(["--data", "d.csv", "--out", "m.json", "--model", "xgboost"]) }
        #expect(throws: (any Error).self) { try Train.parse(["--data", "d.csv", "--out", "m.json", "--data-format", "parquet"]) }
        #expect(throws: (any Error).self) { try PositionBiasCommand.parse(["--events", "e.jsonl", "--method", "magic"]) }
        #expect(throws: (any Error).self) { try OPE.parse(["--logs", "l", "--policy", "p", "--estimators", "ipw,nope"]) }
        #expect(throws: (any Error).self) { try Report.parse(["--events", "e.jsonl", "--input-format", "xml"]) }
        func flat(_ text: String) -> String { text.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        let help = flat(Train.helpMessage())
        #expect(help.contains("values: lr, fm, deepfm, dcnv2"))
        #expect(help.contains("values: csv, criteo, funnel"))
        #expect(help.contains("values: none, platt, isotonic"))
        #expect(flat(PositionBiasCommand.helpMessage()).contains("values: randomized, em, harvesting"))
    }

    @Test("funnel report writes the JSON report of an event file")
    func report() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var b = LogBuilder()
        b.exposure("u1", 0, variant: "control")
        b.exposure("u2", 0, variant: "treatment")
        let i = b.impression("u1", 10, item: "a")
        b.click("u1", 12, on: i)
        let events = try folder.write("events.jsonl", b.lines.joined(separator: "\n"))
        let out = folder.path + "/report.json"
        let command = try Report.parse(["--events", events, "--format", "json", "--output", out])
        try command.run()
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
        let variants = try #require(doc["variants"] as? [String: Any])
        let control = try #require(variants["control"] as? [String: Any])
        #expect(control["users"] as? Int == 1 && control["clicks"] as? Int == 1)
    }

    @Test("funnel calibrate reports the simulations it ran", .timeLimit(.minutes(2)))
    func calibrate() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let out = folder.path + "/calibration.json"
        let command = try Calibrate.parse(["--simulations", "10", "--users", "200", "--truth-users", "2000", "--output", out])
        try command.run()
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
        #expect(doc["simulations"] as? Int == 10)
        let rate = try #require(doc["aa_primary_false_positive_rate"] as? Double)
        #expect(rate >= 0 && rate <= 1)
    }
}
