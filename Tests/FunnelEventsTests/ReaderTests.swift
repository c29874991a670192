import Foundation
import FunnelBase
import FunnelEvents
import FunnelTestSupport
import Testing

func tempDir() throws -> String { try TemporaryFolder("funnel-test").path }

let sampleJSONL = """
{"type":"exposure","event_id":"x1","ts":"2026-03-01T12:00:00Z","user_id":"u1","experiment":"e","variant":"control","context":{"device":"mobile"}}
{"type":"impression","event_id":"i1","ts":1772366401000,"user_id":"u1","item_id":"a,b","position":1,"viewable_fraction":0.5,"viewable_ms":1000}

{"type":"click","event_id":"c1","ts":"2026-03-01T12:00:05Z","user_id":"u1","impression_id":"i1","bot":false}
{"type":"purchase","event_id":"p1","ts":"2026-03-01T13:00:05Z","user_id":"u1","order_id":"o1","items":[{"item_id":"a,b","price":10,"quantity":2}]}
{"type":"impression","event_id":"i2","ts":1772366401000,"user_id":"u1","item_id":"a","position":"2"}
{"type":"click","event_id":"c1","ts":"2026-03-01T12:00:05Z","user_id":"u1","impression_id":"i1"}
"""

/// The same events as CSV (DESIGN.md §2): empty cells are absent, context.<key> columns, items as JSON.
let sampleCSV = """
type,event_id,ts,user_id,experiment,variant,context.device,item_id,position,viewable_fraction,viewable_ms,impression_id,bot,order_id,items
exposure,x1,2026-03-01T12:00:00Z,u1,e,control,mobile,,,,,,,,
impression,i1,1772366401000,u1,,,,"a,b",1,0.5,1000,,,,

click,c1,2026-03-01T12:00:05Z,u1,,,,,,,,i1,false,,
purchase,p1,2026-03-01T13:00:05Z,u1,,,,,,,,,,o1,"[{""item_id"":""a,b"",""price"":10,""quantity"":2}]"
impression,i2,1772366401000,u1,,,,a,two,,,,,,
click,c1,2026-03-01T12:00:05Z,u1,,,,,,,,i1,,,
"""

/// Threads, processes or long loops: a hang fails the test instead of stalling the run.
@Suite(.timeLimit(.minutes(5)))
struct ReaderTests {
    func summary(_ log: EventLog) -> [Int] {
        [log.counters.eventsRead, log.events.count, log.counters.duplicateEvents, log.counters.quarantinedTotal,
         log.counters.quarantined[.wrongType] ?? 0]
    }

    @Test func jsonlCountsEveryNonBlankLine() throws {
        let log = try EventReader.read(text: sampleJSONL)
        // 6 non-blank lines: 4 accepted, 1 wrong_type (position "2"), 1 duplicate (c1).
        #expect(summary(log) == [6, 4, 1, 1, 1])
        #expect(log.lines.first?.quantity == 2)
        #expect(log.items[log.lines[0].item] == "a,b")
    }

    @Test func csvReadsLikeJSONL() throws {
        let log = try EventReader.read(text: sampleCSV, format: .csv)
        #expect(summary(log) == [6, 4, 1, 1, 1])
        let exposure = log.events[0]
        let ctx = log.context(of: exposure).map { (log.labels[$0.key], log.labels[$0.value]) }
        #expect(ctx.count == 1 && ctx[0] == ("device", "mobile"))
        #expect(log.viewability.count == 1 && log.viewability[0].fraction == 0.5)
    }

    @Test func byteOrderMarksAreSkippedInFiles() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        #expect(FileManager.default.createFile(atPath: dir + "/a.csv", contents: Data(bom + Array(sampleCSV.utf8))))
        #expect(FileManager.default.createFile(atPath: dir + "/b.jsonl", contents: Data(bom + Array(sampleJSONL.utf8))))
        #expect(summary(try EventReader.read(paths: [dir + "/a.csv"])) == [6, 4, 1, 1, 1])
        #expect(summary(try EventReader.read(paths: [dir + "/b.jsonl"])) == [6, 4, 1, 1, 1])
    }

    @Test func csvWithCRLFLineEndings() throws {
        let crlf = sampleCSV.replacingOccurrences(of: "\n", with: "\r\n")
        let log = try EventReader.read(text: crlf, format: .csv)
        #expect(summary(log) == [6, 4, 1, 1, 1])
        // The quoted item "a,b" keeps no trailing carriage return: purchase line and impression share it.
        #expect(log.items.count == 1)
    }

    @Test func csvQuarantineKeepsTheRecordAndLine() throws {
        let rows = Rows()
        _ = try EventReader.read(text: sampleCSV, format: .csv) { rows.add($0) }
        #expect(rows.all.count == 1)
        #expect(rows.all[0].line == 7)
        #expect(String(decoding: rows.all[0].raw, as: UTF8.self) == "impression,i2,1772366401000,u1,,,,a,two,,,,,,")
    }

    @Test func filesDirectoriesAndGzip() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try sampleJSONL.write(toFile: dir + "/a.jsonl", atomically: true, encoding: .utf8)
        try sampleCSV.replacingOccurrences(of: "x1", with: "x9").write(toFile: dir + "/b.csv", atomically: true, encoding: .utf8)
        // gzip a copy with the system gzip.
        let gz = Process()
        gz.executableURL = URL(fileURLWithPath: "/bin/sh")
        gz.arguments = ["-c", "gzip -c '\(dir)/a.jsonl' > '\(dir)/c.jsonl.gz'"]
        try gz.run(); gz.waitUntilExit()
        let single = try EventReader.read(paths: [dir + "/c.jsonl.gz"])
        #expect(summary(single) == [6, 4, 1, 1, 1])
        let all = try EventReader.read(paths: [dir])
        // a.jsonl: 4 new, 1 duplicate; b.csv: only x9 is new, 4 duplicates; c.jsonl.gz: 5 duplicates.
        // Each file has one quarantined line.
        #expect(all.counters.eventsRead == 18)
        #expect(all.events.count == 5)
        #expect(all.counters.quarantinedTotal == 3)
        #expect(all.counters.duplicateEvents == 10)
    }

    @Test func missingPathIsAClearError() {
        #expect(throws: InputError.self) { try EventReader.read(paths: ["/nonexistent/events.jsonl"]) }
    }

    @Test func quarantineRowIsJSON() throws {
        let row = QuarantineRow(file: "f.jsonl", line: 3, rejection: Rejection(.invalidJSON, field: nil, "bad"), raw: [0x7B, 0xFF])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(row.jsonLine().utf8)) as? [String: Any])
        #expect(object["line"] as? Int == 3)
        #expect(object["reason"] as? String == "invalid_json")
        #expect(object["raw_base64"] as? String == "e/8=")
    }
}

final class Rows: @unchecked Sendable {
    var all: [QuarantineRow] = []
    func add(_ r: QuarantineRow) { all.append(r) }
}
