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

    @Test("funnel summarize on two parts of a log, merged by funnel report --summaries, gives the report of the whole")
    func summarizeAndMerge() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var a = LogBuilder(), b = LogBuilder()
        for k in 0..<30 {
            for (builder, user) in [(0, "a\(k)"), (1, "b\(k)")] {
                var log = builder == 0 ? a : b
                log.exposure(user, Double(k), variant: k % 2 == 0 ? "control" : "treatment")
                let i = log.impression(user, Double(k) + 10, item: "item\(k % 4)")
                if k % 3 == 0 { log.click(user, Double(k) + 12, on: i) }
                if k % 5 == 0 { log.purchase(user, Double(k) + 100, items: [("item\(k % 4)", 1, 9.5)]) }
                if builder == 0 { a = log } else { b = log }
            }
        }
        // Distinct event ids across the parts (ids need only be unique within a user, but the
        // whole file below should read the same either way).
        let partA = try folder.write("a.jsonl", a.lines.joined(separator: "\n"))
        let partB = try folder.write("b.jsonl", b.lines.joined(separator: "\n").replacingOccurrences(of: "\"event_id\":\"", with: "\"event_id\":\"b-").replacingOccurrences(of: "\"impression_id\":\"", with: "\"impression_id\":\"b-"))
        let whole = try folder.write("whole.jsonl", try String(contentsOfFile: partA, encoding: .utf8) + "\n" + String(contentsOfFile: partB, encoding: .utf8))
        try Summarize.parse(["--events", partA, "--out", folder.path + "/a.summary"]).run()
        try Summarize.parse(["--events", partB, "--out", folder.path + "/b.summary"]).run()
        try Report.parse(["--summaries", folder.path + "/a.summary", folder.path + "/b.summary", "--format", "json", "--output", folder.path + "/merged.json"]).run()
        try Report.parse(["--events", whole, "--format", "json", "--output", folder.path + "/whole.json"]).run()
        let merged = try String(contentsOfFile: folder.path + "/merged.json", encoding: .utf8)
        let direct = try String(contentsOfFile: folder.path + "/whole.json", encoding: .utf8)
        #expect(merged == direct)
        #expect(merged.contains("\"users\" : 30") || merged.contains("\"users\": 30"))
        #expect(throws: (any Error).self) { try Report.parse(["--summaries", "x.summary", "--events", whole]) }
        #expect(throws: (any Error).self) { try Report.parse([]) }
    }

    @Test("funnel summarize --part: a part with no exposure still gives its summary, and the merge is the report of the whole")
    func summarizePartWithoutExposure() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var a = LogBuilder(), b = LogBuilder()
        for k in 0..<20 {
            a.exposure("a\(k)", Double(k), variant: k % 2 == 0 ? "control" : "treatment")
            let i = a.impression("a\(k)", Double(k) + 10, item: "item\(k % 3)")
            if k % 2 == 0 { a.click("a\(k)", Double(k) + 12, on: i) }
        }
        // Part B, as a Spark partition can be: users never exposed, and two lines Funnel quarantines.
        for k in 0..<5 {
            let i = b.impression("c\(k)", Double(k) + 10, item: "item0")
            b.click("c\(k)", Double(k) + 11, on: i)
        }
        let junk = ["{\"type\":\"click\",\"event_id\":", "{\"type\":\"view\",\"event_id\":\"v1\",\"ts\":0,\"user_id\":\"c9\"}"]
        let partA = try folder.write("a.jsonl", a.lines.joined(separator: "\n"))
        let bText = (b.lines + junk).joined(separator: "\n").replacingOccurrences(of: "\"event_id\":\"", with: "\"event_id\":\"b-")
            .replacingOccurrences(of: "\"impression_id\":\"", with: "\"impression_id\":\"b-")
        let partB = try folder.write("b.jsonl", bText)
        let whole = try folder.write("whole.jsonl", try String(contentsOfFile: partA, encoding: .utf8) + "\n" + bText)
        // Without --part, a part with no exposure is the error it is for funnel report.
        #expect(throws: (any Error).self) { try Summarize.parse(["--events", partB, "--out", folder.path + "/b.summary"]).run() }
        try Summarize.parse(["--events", partA, "--part", "--out", folder.path + "/a.summary"]).run()
        try Summarize.parse(["--events", partB, "--part", "--out", folder.path + "/b.summary"]).run()
        try Report.parse(["--summaries", folder.path + "/a.summary", folder.path + "/b.summary", "--format", "json", "--output", folder.path + "/merged.json"]).run()
        try Report.parse(["--events", whole, "--format", "json", "--output", folder.path + "/whole.json"]).run()
        let merged = try String(contentsOfFile: folder.path + "/merged.json", encoding: .utf8)
        #expect(merged == (try String(contentsOfFile: folder.path + "/whole.json", encoding: .utf8)))
        // By hand: A's 20 exposures, 20 impressions and 10 clicks, B's 5 impressions, 5 clicks and 2 junk lines.
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(merged.utf8)) as? [String: Any])
        let quality = try #require(doc["data_quality"] as? [String: Any])
        #expect(quality["events_read"] as? Int == 62)
        let quarantined = try #require(quality["quarantined"] as? [String: Int])
        #expect(quarantined["invalid_json"] == 1 && quarantined["unknown_type"] == 1)
        // Summaries that together hold no exposure are refused, naming the problem.
        do {
            try Report.parse(["--summaries", folder.path + "/b.summary", "--format", "json", "--output", folder.path + "/b.json"]).run()
            Issue.record("a merge without any exposure was accepted")
        } catch {
            #expect("\(error)".contains("no valid exposure"))
        }
    }

    @Test("--engine spark: its options are checked before anything runs")
    func sparkOptions() throws {
        #expect(throws: (any Error).self) { try Report.parse(["--events", "e.jsonl", "--engine", "spark"]) }
        #expect(throws: (any Error).self) { try Report.parse(["--events", "e.jsonl", "--master", "local[2]"]) }
        #expect(throws: (any Error).self) { try Report.parse(["--events", "e.jsonl", "--input-format", "parquet"]) }
        #expect(throws: (any Error).self) { try Report.parse(["--events", "e.jsonl", "--engine", "spark", "--master", "local[2]", "--daily"]) }
        #expect(throws: (any Error).self) { try Report.parse(["--events", "-", "--engine", "spark", "--master", "local[2]"]) }
        #expect(throws: (any Error).self) { try Report.parse(["--events", "e.jsonl", "--engine", "spark", "--master", "local[2]", "--spark-conf", "novalue"]) }
        #expect(throws: (any Error).self) { try Report.parse(["--events", "e.jsonl", "--engine", "spark", "--master", "local[2]", "--spark-binary", "/nonexistent/funnel"]) }
        #expect(throws: (any Error).self) { try Report.parse(["--events", "e.jsonl", "--spark-binary", "/bin/true"]) }
        let ok = try Report.parse(["--events", "e.parquet", "--input-format", "parquet", "--engine", "spark", "--master", "local[2]",
                                   "--spark-conf", "spark.executor.memory=2g"])
        #expect(ok.spark.engine == .spark && ok.spark.sparkConf == ["spark.executor.memory=2g"])
        do {
            try Report.parse(["--events", "e.jsonl", "--engine", "spark", "--master", "local[2]", "--spark-submit", "/nonexistent/spark-submit"]).run()
            Issue.record("a missing spark-submit was accepted")
        } catch {
            #expect("\(error)".contains("--spark-submit /nonexistent/spark-submit: not an executable file"))
        }
    }

    @Test("the Spark job's statistics line reads the driver's stats.json")
    func sparkStatisticsLine() {
        let stats: [String: Any] = ["partitions": 8, "tasks": 25, "failed_tasks": 1, "executors": 2, "executors_removed": 1,
                                    "shuffle_write_bytes": 3 * 1_048_576, "quarantined": 4, "seconds": 12.34,
                                    "stage_seconds": [["stage": 0, "tasks": 16, "seconds": 2.5], ["stage": 1, "tasks": 8, "seconds": NSNull()]]]
        #expect(SparkJob.describe(stats) == "8 partitions, 25 tasks (1 failed and retried), 2 executors (1 lost), shuffled 3.0 MiB, "
                + "4 lines quarantined, 12.3 s in Spark; stages: 16 tasks in 2.5 s")
        #expect(!SparkJob.describe(["partitions": 4]).contains("executors"))
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
