import Foundation
import FunnelAttribution
import FunnelBase
import FunnelConfig
import FunnelEvents
import FunnelPipeline
import FunnelSimulator
import FunnelTestSupport
import Testing

/// `--as-of` and `--daily`: counting as of an instant equals counting the log cut at that instant.
struct AsOfTests {
    /// The simulator's log without traps (users arrive over seven days) and each line's time, read
    /// from its text (`"ts":` an epoch-millisecond number or an RFC 3339 string); nil for a line
    /// without one, which the reader quarantines with or without a cut.
    static func log(users: Int, seed: UInt64) throws -> (lines: [String], ts: [Int64?]) {
        var sim = Simulator(scenario: .clickbait, users: users, seed: seed)
        sim.traps = false
        var bytes: [UInt8] = []
        _ = sim.run { bytes += $0 }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
        let ts = lines.map { line -> Int64? in
            guard let r = line.range(of: #""ts"\s*:\s*"#, options: .regularExpression) else { return nil }
            let rest = line[r.upperBound...]
            if rest.first == "\"" {
                let body = rest.dropFirst()
                guard let end = body.firstIndex(of: "\"") else { return nil }
                return Array(body[..<end].utf8).withUnsafeBufferPointer { Timestamp.millis(fromRFC3339: $0) }
            }
            return Int64(String(rest.prefix { $0.isNumber || $0 == "-" }))
        }
        return (lines, ts)
    }

    /// The summary without its reading counters (lines read, duplicates, quarantine), which count
    /// the lines of the input rather than the rules.
    static func counted(_ s: ExperimentSummary) -> ExperimentSummary {
        var s = s
        s.dataQuality.eventsRead = 0
        s.dataQuality.duplicateEvents = 0
        s.dataQuality.quarantined = [:]
        s.rules = ""
        return s
    }

    @Test func countingAsOfAnInstantEqualsCountingTheLogCutThere() throws {
        let (lines, ts) = try Self.log(users: 500, seed: 21)
        let full = try EventReader.read(text: lines.joined(separator: "\n"))
        let sorted = ts.compactMap { $0 }.sorted()
        #expect(sorted.count > lines.count * 9 / 10)
        for q in [0.2, 0.5, 0.8, 1.0] {
            let cutoff = sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]
            var config = FunnelConfig()
            config.asOf = cutoff
            let asOf = try Attributor.summarize(full, config: config)
            let kept = zip(lines, ts).filter { ($0.1 ?? Int64.min) <= cutoff }.map(\.0)
            // The cut log is counted with the same instant, which drops nothing from it but makes
            // the catalog seen that of its events (the whole log's would also name items of
            // quarantined lines).
            let cut = try Attributor.summarize(try EventReader.read(text: kept.joined(separator: "\n")), config: config)
            let x = Self.counted(asOf), y = Self.counted(cut)
            // Field by field, so that a failure names what differs.
            #expect(x.variants == y.variants, "as of the \(q) quantile of time: variants")
            #expect(x.segments == y.segments, "as of the \(q) quantile of time: segments")
            #expect(x.dataQuality == y.dataQuality, "as of the \(q) quantile of time: data quality")
            #expect(x.endOfData == y.endOfData && x.itemsSeen == y.itemsSeen, "as of the \(q) quantile of time: end of data, items")
            #expect(x == y, "as of the \(q) quantile of time")
            #expect(asOf.variants.values.map(\.users.count).reduce(0, +) > 0)
        }
        // A summary as of an instant does not merge with one of the whole log: its rules differ.
        var config = FunnelConfig()
        config.asOf = sorted[sorted.count / 2]
        #expect(ExperimentSummary.rulesKey(config) != ExperimentSummary.rulesKey(FunnelConfig()))
    }

    /// The daily path: one row per UTC day from the first exposure to the last event; each row is
    /// the report as of that day's end, so users only grow, and the last row is the whole log's report.
    @Test func dailyPathEndsAtTheWholeReport() throws {
        let (lines, _) = try Self.log(users: 800, seed: 22)
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.path + "/events.jsonl", yaml = folder.path + "/funnel.yaml"
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        try Data("ab_testing: {sequential: msprt}\n".utf8).write(to: URL(fileURLWithPath: yaml))
        let daily = try DailyPath.run(EventSource(paths: [path]), configPath: yaml, sequential: nil)
        #expect(daily.rows.count >= 7 && daily.rows.count <= 10, "\(daily.rows.count) days")
        for (a, b) in zip(daily.rows, daily.rows.dropFirst()) {
            #expect(a.users.map(\.users).reduce(0, +) <= b.users.map(\.users).reduce(0, +))
            // The mSPRT's path p-value is a running minimum.
            for (pa, pb) in zip(a.pathP, b.pathP) { if let pa, let pb { #expect(pb <= pa) } }
        }
        let whole = try ReportJob(source: EventSource(paths: [path]), configPath: yaml).run()
        let last = try #require(daily.rows.last?.comparisons.first)
        guard case .array(let comparisons)? = whole["comparisons"] else { Issue.record("no comparisons"); return }
        let primary = try #require(comparisons.first { $0["metric"] == .string("purchases_per_user") && $0["segment"] == .null })
        #expect(primary["relative_lift"] == .number(last.difference.relativeLift))
        #expect(primary["sequential"]?["p_value"] == .number(last.sequential?.pValue))
        #expect(whole["diagnosis"]?["verdict"] == .string(daily.rows.last!.verdict.rawValue))
    }
}
