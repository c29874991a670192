import Foundation
import FunnelAttribution
import FunnelBase
import FunnelConfig
import FunnelEvents
import FunnelOPE
import FunnelPipeline
import FunnelSimulator
import FunnelStats
import FunnelTestSupport
import Testing

/// Summaries of parts of a log, merged, against the summary and the report of the whole log
/// (DESIGN.md §7: every counting rule works per user, so a split by user changes no count).
struct SummaryTests {
    static func simulated(_ scenario: Scenario, users: Int, seed: UInt64) -> [String] {
        var sim = Simulator(scenario: scenario, users: users, seed: seed)
        var bytes: [UInt8] = []
        _ = sim.run { bytes += $0 }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// The `user_id` of a line, found textually (lines that do not show one go to part 0).
    static func userID(_ line: String) -> String? {
        guard let r = line.range(of: #""user_id"\s*:\s*""#, options: .regularExpression) else { return nil }
        let rest = line[r.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }

    /// Splits lines into `parts` by a random assignment of users (seeded), keeping each user whole.
    static func split(_ lines: [String], parts: Int, seed: UInt64) -> [[String]] {
        var g = SplitMix64(seed: seed)
        var partOf: [String: Int] = [:]
        var out = [[String]](repeating: [], count: parts)
        for line in lines where !line.isEmpty {
            let p: Int
            if let u = userID(line) {
                if let known = partOf[u] { p = known } else { p = Int(g.next() % UInt64(parts)); partOf[u] = p }
            } else {
                p = 0
            }
            out[p].append(line)
        }
        return out
    }

    static func summary(_ lines: [String], _ config: FunnelConfig) throws -> ExperimentSummary {
        try Attributor.summarize(EventReader.read(text: lines.joined(separator: "\n")), config: config)
    }

    /// Equal JSON documents, numbers to `tolerance` relative (counts exactly: integers are ints).
    static func same(_ a: JSONValue, _ b: JSONValue, tolerance: Double = 1e-12, path: String = "$") -> String? {
        switch (a, b) {
        case (.double(let x), .double(let y)):
            if x == y || (x.isNaN && y.isNaN) { return nil }
            return abs(x - y) <= tolerance * max(abs(x), abs(y)) ? nil : "\(path): \(x) against \(y)"
        case (.array(let x), .array(let y)):
            guard x.count == y.count else { return "\(path): \(x.count) elements against \(y.count)" }
            for i in x.indices { if let d = same(x[i], y[i], tolerance: tolerance, path: "\(path)[\(i)]") { return d } }
            return nil
        case (.object(let x), .object(let y)):
            guard x.map(\.0) == y.map(\.0) else { return "\(path): keys \(x.map(\.0)) against \(y.map(\.0))" }
            for i in x.indices { if let d = same(x[i].1, y[i].1, tolerance: tolerance, path: "\(path).\(x[i].0)") { return d } }
            return nil
        default:
            return a.serialized() == b.serialized() ? nil : "\(path): \(a.serialized()) against \(b.serialized())"
        }
    }

    /// Property: for random splits of the users into 2, 3, 7 and 16 parts, merged in a random order,
    /// the counts equal the whole's exactly and every moment to 1e-12 relative; the report of the
    /// merged summary equals the report of the whole, with CUPED on and off.
    @Test(arguments: [(Scenario.clickbait, UInt64(3)), (.positionBias, 4)])
    func mergedPartsEqualTheWhole(_ scenario: Scenario, _ seed: UInt64) throws {
        let lines = Self.simulated(scenario, users: 1200, seed: seed)
        let config = FunnelConfig()
        let whole = try Self.summary(lines, config)
        var cuped = config
        cuped.cuped = true
        for (k, parts) in [2, 3, 7, 16].enumerated() {
            var g = SplitMix64(seed: seed * 100 + UInt64(k))
            let pieces = try Self.split(lines, parts: parts, seed: seed * 1000 + UInt64(k)).map { try Self.summary($0, config) }
                .map { ($0, g.next()) }.sorted { $0.1 < $1.1 }.map(\.0)
            var merged = pieces[0]
            for p in pieces.dropFirst() { merged = try merged.merging(p) }
            #expect(merged.dataQuality == whole.dataQuality)
            #expect(merged.endOfData == whole.endOfData && merged.itemsSeen == whole.itemsSeen)
            #expect(Set(merged.variants.keys) == Set(whole.variants.keys))
            for (name, v) in whole.variants {
                let m = try #require(merged.variants[name])
                #expect(m.users.count == v.users.count && m.usersWithPreData == v.usersWithPreData)
                #expect(m.positions == v.positions && m.items == v.items)
                for i in v.users.sums.indices {
                    let a = m.users.sums[i].value, b = v.users.sums[i].value
                    #expect(abs(a - b) <= 1e-12 * max(abs(b), 1e-300), "\(name) moment \(i): \(a) against \(b)")
                }
                #expect(m.windows.map(\.count) == v.windows.map(\.count))
            }
            #expect(Set(merged.segments.keys) == Set(whole.segments.keys))
            for c in [config, cuped] {
                let d = Self.same(buildReport(summary: merged, config: c), buildReport(summary: whole, config: c))
                #expect(d == nil, "\(parts) parts, cuped \(c.cuped): \(d ?? "")")
            }
        }
    }

    /// The report of a log's summary is the report computed from its events.
    @Test func reportFromTheSummaryIsTheReportFromTheEvents() throws {
        let lines = Self.simulated(.clickbait, users: 800, seed: 9)
        let log = try EventReader.read(text: lines.joined(separator: "\n"))
        let fromEvents = try buildReport(log: log, config: FunnelConfig())
        let fromSummary = buildReport(summary: try Attributor.summarize(log, config: FunnelConfig()), config: FunnelConfig())
        #expect(Self.same(fromEvents, fromSummary, tolerance: 0) == nil)
    }

    /// A summary file reads back as the summary written, bit for bit; another format version, other
    /// counting rules or another experiment are refused with a sentence that says what to do.
    @Test func fileRoundTripAndRefusals() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let lines = Self.simulated(.clickbait, users: 300, seed: 5)
        let s = try Self.summary(lines, FunnelConfig())
        let data = try SummaryFile.encode(s)
        let back = try SummaryFile.decode(data, path: "a.summary")
        #expect(back == s)
        #expect(try SummaryFile.encode(back) == data)

        let text = String(decoding: data, as: UTF8.self)
        let v2 = try folder.write("v2.summary", text.replacingOccurrences(of: #""version":1"#, with: #""version":2"#))
        #expect(throws: PipelineError.self) { try mergeSummaries([v2], config: FunnelConfig()) }
        do { _ = try mergeSummaries([v2], config: FunnelConfig()) } catch {
            #expect(error.description.contains("summary format version 2") && error.description.contains("funnel summarize again"))
        }
        let a = try folder.write("a.summary", text)
        var other = FunnelConfig()
        other.conversionWindowHours = 48
        do { _ = try mergeSummaries([a], config: other); Issue.record("merged under other rules") } catch {
            #expect(error.description.contains("other counting rules") && error.description.contains("--config"))
        }
        var named = FunnelConfig()
        named.experiment = "another"
        do { _ = try mergeSummaries([a], config: named); Issue.record("merged another experiment") } catch {
            #expect(error.description.contains("'another'"))
        }
        let junk = try folder.write("junk.summary", "{\"format\": \"something\"}")
        do { _ = try mergeSummaries([junk], config: FunnelConfig()); Issue.record("read junk") } catch {
            #expect(error.description.contains("not a Funnel summary"))
        }
    }

    /// Writing a summary where it cannot be written fails with the path named and leaves nothing behind.
    @Test func unwritableOutputLeavesNoFile() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let events = try folder.write("e.jsonl", Self.simulated(.aa, users: 50, seed: 1).joined(separator: "\n"))
        let target = folder.path + "/missing/dir/out.summary"
        do {
            _ = try SummarizeJob(source: EventSource(paths: [events]), outPath: target).run()
            Issue.record("wrote into a missing folder")
        } catch {
            #expect(error.description.contains("--out \(target)"))
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(left == ["e.jsonl"])
    }
}

/// The partitioned, bounded-memory run against the in-memory one.
struct PartitionedRunTests {
    /// Byte for byte the same report JSON with 1, 2, 7 and 64 partitions, held in memory or spilled
    /// (a budget of 64 KiB forces every partition to a temporary file), and the same quarantine file.
    @Test(arguments: [Scenario.clickbait, .positionBias])
    func partitionedEqualsInMemory(_ scenario: Scenario) throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let lines = SummaryTests.simulated(scenario, users: 900, seed: 17)
        let events = try folder.write("events.jsonl", lines.joined(separator: "\n"))
        let quarantineA = folder.path + "/qa.jsonl"
        let log = try readEvents(EventSource(paths: [events], quarantinePath: quarantineA))
        let expectedDoc = try buildReport(log: log, config: FunnelConfig())
        let expected = expectedDoc.serialized(pretty: true)
        for partitions in [1, 2, 7, 64] {
            for memory in [64 << 10, 1 << 30] {
                let quarantineB = folder.path + "/qb.jsonl"
                let job = ReportJob(source: EventSource(paths: [events], quarantinePath: quarantineB),
                                    plan: PartitionPlan(memory: memory, partitions: partitions, temporaryFolder: folder.path))
                let gotDoc = try job.run()
                let got = gotDoc.serialized(pretty: true)
                #expect(got == expected, "\(partitions) partitions, memory \(memory): \(SummaryTests.same(gotDoc, expectedDoc, tolerance: 0) ?? "")")
                #expect(try String(contentsOfFile: quarantineB, encoding: .utf8) == String(contentsOfFile: quarantineA, encoding: .utf8))
                // The spilled partitions are removed.
                let left = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix("funnel-partition") }
                #expect(left.isEmpty)
            }
        }
    }

    /// The report's position-bias section (every method, and fixed propensities) is the in-memory
    /// one byte for byte, in one part in memory and in 7 and 64 spilled parts: its tally is
    /// merged from the partitions', with each user's bootstrap weights drawn from the user's id.
    @Test(arguments: ["em", "harvesting", "randomized", "fixed"])
    func positionBiasSectionIsPartitioned(_ method: String) throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let events = try folder.write("events.jsonl", SummaryTests.simulated(.positionBias, users: 300, seed: 23).joined(separator: "\n"))
        let yaml = method == "fixed" ? "position_bias: {propensities: [1.0, 0.6, 0.4, 0.3], floor: 0.05}"
            : "position_bias: {method: \(method)}"
        let configPath = try folder.write("funnel.yaml", yaml)
        let config = try FunnelConfig.parse(yaml: yaml)
        let expectedDoc = try buildReport(log: readEvents(EventSource(paths: [events])), config: config)
        let section = try #require(expectedDoc["position_bias"])
        #expect(section["rounds"] != .int(0))
        if method == "em" || method == "harvesting" {
            #expect(section["positions"]?["2"]?["ci"] != .null, "bootstrap intervals")
        }
        let expected = expectedDoc.serialized(pretty: true)
        // Map and reduce: three summary files of disjoint users, written and merged.
        let lines = try String(contentsOfFile: events, encoding: .utf8).split(separator: "\n").map(String.init)
        var parts: [[String]] = [[], [], []]
        for line in lines { parts[Int(PositionBiasTally.userKey(SummaryTests.userID(line) ?? "") % 3)].append(line) }
        var summaries: [String] = []
        for (k, part) in parts.enumerated() {
            let file = try folder.write("part\(k).jsonl", part.joined(separator: "\n"))
            summaries.append(folder.path + "/part\(k).summary")
            _ = try SummarizeJob(source: EventSource(paths: [file]), configPath: configPath, outPath: summaries[k]).run()
        }
        let merged = try ReportJob(source: EventSource(paths: []), configPath: configPath, summaryPaths: summaries).run()
        #expect(merged.serialized(pretty: true) == expected, "\(method), from summaries: \(SummaryTests.same(merged, expectedDoc, tolerance: 0) ?? "")")
        // A summary made without the tally, or under other settings, is refused.
        let plain = folder.path + "/plain.summary"
        _ = try SummarizeJob(source: EventSource(paths: [events]), outPath: plain).run()
        do { _ = try mergeSummaries([plain], config: config); Issue.record("merged a summary without a tally") } catch {
            #expect(error.description.contains("holds no position-bias tally"))
        }
        var other = config
        other.rankerContext = "model"
        do { _ = try mergeSummaries([summaries[0]], config: other); Issue.record("merged under other settings") } catch {
            #expect(error.description.contains("ranker_context=ranker") && error.description.contains("ranker_context=model"))
        }
        for (partitions, memory) in [(1, 1 << 30), (7, 64 << 10), (64, 64 << 10)] {
            let job = ReportJob(source: EventSource(paths: [events]), configPath: configPath,
                                plan: PartitionPlan(memory: memory, partitions: partitions, temporaryFolder: folder.path))
            let gotDoc = try job.run()
            #expect(gotDoc.serialized(pretty: true) == expected,
                    "\(method), \(partitions) partitions, memory \(memory): \(SummaryTests.same(gotDoc, expectedDoc, tolerance: 0) ?? "")")
        }
    }

    @Test func spillingReportsWhatItDid() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let events = try folder.write("events.jsonl", SummaryTests.simulated(.aa, users: 400, seed: 2).joined(separator: "\n"))
        let small = try summarizePartitioned(EventSource(paths: [events]), config: FunnelConfig(),
                                             plan: PartitionPlan(memory: 32 << 10, partitions: 5, temporaryFolder: folder.path))
        #expect(small.spilled && small.partitions == 5 && small.spilledBytes > 0)
        let large = try summarizePartitioned(EventSource(paths: [events]), config: FunnelConfig(),
                                             plan: PartitionPlan(memory: 1 << 30, partitions: 5, temporaryFolder: folder.path))
        #expect(!large.spilled)
        #expect(small.summary == large.summary)
    }

    /// A temporary folder that does not exist is named in the error, before anything is read.
    @Test func missingTemporaryFolderIsAClearError() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let events = try folder.write("events.jsonl", SummaryTests.simulated(.aa, users: 50, seed: 2).joined(separator: "\n"))
        do {
            _ = try summarizePartitioned(EventSource(paths: [events]), config: FunnelConfig(),
                                         plan: PartitionPlan(memory: 1 << 20, temporaryFolder: folder.path + "/nope"))
            Issue.record("ran without its temporary folder")
        } catch {
            #expect(error.description.contains("--temp-dir \(folder.path)/nope"))
        }
    }

    /// A spill that cannot be written (here a folder stands where partition 0's file would go, as a
    /// full disk would refuse it) is a clear error naming the folder, and no partition file stays.
    @Test func spillFailureIsAClearErrorAndLeavesNothing() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let events = try folder.write("events.jsonl", SummaryTests.simulated(.aa, users: 300, seed: 4).joined(separator: "\n"))
        let spill = folder.path + "/spill"
        let blocker = "funnel-partition-\(getpid())-0.bin"
        try FileManager.default.createDirectory(atPath: spill + "/" + blocker, withIntermediateDirectories: true)
        do {
            _ = try summarizePartitioned(EventSource(paths: [events]), config: FunnelConfig(),
                                         plan: PartitionPlan(memory: 16 << 10, partitions: 3, temporaryFolder: spill))
            Issue.record("spilled through a blocked file")
        } catch {
            #expect(error.description.contains("cannot create a temporary file in \(spill)"), "\(error)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: spill) == [blocker])
    }

    /// Strings written with escapes (`"\u0075"` for `u`) are the same ids as written plainly: the
    /// readers refer to plain strings in place and decode only escaped ones, and both paths must
    /// meet in one id. The escaped log's report, partitioned and spilled or in memory, is the plain
    /// log's.
    @Test func escapedStringsAreTheirDecodedText() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let lines = SummaryTests.simulated(.clickbait, users: 600, seed: 23)
        let escaped = lines.enumerated().map { k, line -> String in
            guard k % 3 == 0 else { return line }
            return line.replacingOccurrences(of: #""user_id":"u"#, with: #""user_id":"\u0075"#)
                .replacingOccurrences(of: #""item_id":"i"#, with: #""item_id":"\u0069"#)
                .replacingOccurrences(of: #""event_id":"ev"#, with: #""event_id":"\u0065v"#)
                .replacingOccurrences(of: #""impression_id":"ev"#, with: #""impression_id":"e\u0076"#)
                .replacingOccurrences(of: #""variant":"t"#, with: #""variant":"\u0074"#)
        }
        #expect(escaped.filter { $0.contains(#"\u00"#) }.count > lines.count / 4)
        let plain = try folder.write("plain.jsonl", lines.joined(separator: "\n"))
        let coded = try folder.write("escaped.jsonl", escaped.joined(separator: "\n"))
        let expected = try buildReport(log: readEvents(EventSource(paths: [plain])), config: FunnelConfig()).serialized(pretty: true)
        let inMemory = try buildReport(log: readEvents(EventSource(paths: [coded])), config: FunnelConfig()).serialized(pretty: true)
        #expect(inMemory == expected)
        for memory in [16 << 10, 1 << 30] {
            let job = ReportJob(source: EventSource(paths: [coded]),
                                plan: PartitionPlan(memory: memory, partitions: 7, temporaryFolder: folder.path))
            #expect(try job.run().serialized(pretty: true) == expected, "memory \(memory)")
        }
    }

    /// Quarantined lines are named by their line number in files of many reading chunks (the
    /// reader counts each chunk's newlines to number the next), blank lines included.
    @Test func lineNumbersHoldAcrossChunks() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var b = LogBuilder()
        var text: [String] = []
        var bad: [Int] = []
        let padding = String(repeating: "x", count: 90)
        for k in 0..<70_000 {
            if k % 4_999 == 17 {
                text.append(#"{"type":"impression","#)
                bad.append(k + 1)
            } else if k % 1_000 == 3 {
                text.append("")
            } else {
                _ = b.impression("u\(k % 500)", Double(k), item: "item-\(padding)-\(k % 97)")
                text.append(b.lines.removeLast())
            }
        }
        let events = try folder.write("events.jsonl", text.joined(separator: "\n"))
        #expect(try FileManager.default.attributesOfItem(atPath: events)[.size] as! Int > 3 * (4 << 20))
        let quarantine = folder.path + "/q.jsonl"
        _ = try readEvents(EventSource(paths: [events], quarantinePath: quarantine))
        let rows = try String(contentsOfFile: quarantine, encoding: .utf8).split(separator: "\n")
        let numbers = try rows.map { row -> Int in
            let object = try JSONSerialization.jsonObject(with: Data(row.utf8)) as! [String: Any]
            return object["line"] as! Int
        }
        #expect(numbers == bad)
    }

    /// Several experiments, or none, are found across partitions as in one log.
    @Test func experimentChoiceSpansPartitions() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var b = LogBuilder()
        for k in 0..<40 { b.exposure("u\(k)", 0, experiment: k < 20 ? "a" : "b") }
        let two = try folder.write("two.jsonl", b.lines.joined(separator: "\n"))
        var c = LogBuilder()
        for k in 0..<40 { c.impression("u\(k)", 0) }
        let none = try folder.write("none.jsonl", c.lines.joined(separator: "\n"))
        for (path, message) in [(two, "several experiments"), (none, "no valid exposure")] {
            do {
                _ = try summarizePartitioned(EventSource(paths: [path]), config: FunnelConfig(),
                                             plan: PartitionPlan(partitions: 7, temporaryFolder: folder.path))
                Issue.record("\(path) analysed")
            } catch {
                #expect(error.description.contains(message), "\(error)")
            }
        }
    }
}
