import Foundation
import FunnelBase
import FunnelEvents
import FunnelTestSupport
import Testing

/// CSV event files through the shared tokenizer: records that span lines, headers, malformed rows.
struct CSVEventTests {
    /// The counters and every accepted event's type, user, item and time, and the purchase lines.
    func fingerprint(_ log: EventLog) -> [String] {
        var out = ["read \(log.counters.eventsRead) accepted \(log.events.count) quarantined \(log.counters.quarantinedTotal)"]
        for e in log.events { out.append("\(e.type) \(log.users[e.user]) \(e.item >= 0 ? log.items[e.item] : "-") \(e.ts)") }
        for l in log.lines { out.append("line \(log.items[l.item]) \(l.quantity) \(l.price)") }
        return out
    }

    @Test("an items cell holding JSON spread over several lines reads as the same log in JSON Lines")
    func multiLineItems() throws {
        let csv = """
        event_id,ts,user_id,type,item_id,position,order_id,items
        i1,1772366400000,u1,impression,a,1,,
        p1,1772366460000,u1,purchase,,,o1,"[
          {""item_id"": ""a"", ""price"": 10,
           ""quantity"": 2},
          {""item_id"": ""b"", ""price"": 2.5}
        ]"
        i2,1772366470000,u1,impression,b,2,,
        """
        let jsonl = """
        {"event_id":"i1","ts":1772366400000,"user_id":"u1","type":"impression","item_id":"a","position":1}
        {"event_id":"p1","ts":1772366460000,"user_id":"u1","type":"purchase","order_id":"o1","items":[{"item_id":"a","price":10,"quantity":2},{"item_id":"b","price":2.5}]}
        {"event_id":"i2","ts":1772366470000,"user_id":"u1","type":"impression","item_id":"b","position":2}
        """
        let fromCSV = try EventReader.read(text: csv, format: .csv)
        let fromJSONL = try EventReader.read(text: jsonl)
        #expect(fromCSV.counters.quarantinedTotal == 0)
        #expect(fromCSV.events.count == 3 && fromCSV.lines.count == 2)
        #expect(fingerprint(fromCSV) == fingerprint(fromJSONL))
        // The third record starts on line 8 of the file (the purchase spans lines 3 to 7).
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = try folder.write("events.csv", csv.replacingOccurrences(of: "i2,", with: "i2,x,"))
        let rows = Rows()
        _ = try EventReader.read(paths: [path], onQuarantine: { rows.add($0) })
        #expect(rows.all.map(\.line) == [8])
    }

    @Test("a CSV file without a header row is an error naming the file and the missing columns")
    func noHeader() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = try folder.write("events.csv", "i1,1772366400000,u1,impression,a,1\ni2,1772366400001,u1,impression,b,2\n")
        do {
            _ = try EventReader.read(paths: [path])
            Issue.record("a header-less file was read")
        } catch {
            #expect(error.description.hasPrefix(path + ": line 1: the header lacks the required columns event_id, ts, user_id, type"))
        }
        #expect(throws: InputError.self) { try EventReader.read(text: "event_id,ts,user_id\ne1,1,u1\n", format: .csv) }
    }

    @Test("malformed rows are quarantined with their reason and the rows after them are read")
    func malformedRows() throws {
        let csv = """
        event_id,ts,user_id,type,item_id,position
        i1,1772366400000,u1,impression,a,1
        i2,1772366400000,u1,impression,b,2,extra
        i3,1772366400000,u1,impression,"c"d,3
        i4,1772366400000,u1,impression,d,4
        i5,1772366400000,u1,impression,"e,5
        """
        let rows = Rows()
        let log = try EventReader.read(text: csv, format: .csv) { rows.add($0) }
        #expect(log.events.count == 2)
        #expect(log.counters.eventsRead == 5)
        #expect(rows.all.map(\.line) == [3, 4, 6])
        #expect(rows.all.allSatisfy { $0.rejection.reason == .invalidJSON })
        #expect(rows.all[0].rejection.message.contains("row has 7 cells but the header has 6"))
        #expect(rows.all[1].rejection.message.contains("text after the closing quote"))
        #expect(rows.all[2].rejection.message.contains("is not closed"))
        #expect(String(decoding: rows.all[1].raw, as: UTF8.self) == #"i3,1772366400000,u1,impression,"c"d,3"#)
    }

    @Test("UTF-16 event files are refused with what to do")
    func utf16() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var bytes: [UInt8] = [0xFF, 0xFE]
        for c in "event_id,ts,user_id,type\n".utf8 { bytes += [c, 0] }
        for name in ["events.csv", "events.jsonl"] {
            let path = try folder.write(name, bytes)
            do {
                _ = try EventReader.read(paths: [path])
                Issue.record("UTF-16 was read")
            } catch {
                #expect(error.description.contains("UTF-16") && error.description.contains("save it as UTF-8"))
            }
        }
    }
}
