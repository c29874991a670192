import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelTestSupport
import Testing

/// The click-model training table of an event log, worked by hand.
struct TrainingExportTests {
    /// u1: impression of a at 10 s (clicked at 20 s); a again at 100 s on the same surface (the
    /// report's 1-hour dedup collapses it, but it is a round of its own, clicked at 110 s); b at 200 s
    /// with context ranker "x,y" (escaped); c at 300 s on another surface. u2: d at 5 s clicked twice
    /// (label 1); a bot user's impression gives no row. u1 buys a at 150 s: the purchase is attributed
    /// through the click to the first showing of a, so both clicked rounds of a have purchase 1 (the
    /// second counts as the first); u1 buys c at 400 s, never clicked: no purchase label (and the
    /// conversion is unattributed).
    @Test func oneRowPerRoundWithHistory() throws {
        var b = LogBuilder()
        b.exposure("u1", 0); b.exposure("u2", 0, variant: "treatment")
        let a = b.impression("u1", 10, item: "a", position: 1)
        b.click("u1", 20, on: a)
        let again = b.impression("u1", 100, item: "a", position: 2)
        b.click("u1", 110, on: again)
        b.impression("bot", 50, item: "z", position: 1, extra: #","bot":true"#)
        b.impression("u1", 200, item: "b", position: 3, extra: #","context":{"ranker":"x,y"}"#)
        b.impression("u1", 300, item: "c", position: 1, surface: "search")
        let d = b.impression("u2", 5, item: "d", position: 2)
        b.click("u2", 6, on: d)
        b.click("u2", 7, on: d)
        b.purchase("u1", 150, items: [("a", 1, 5)])
        b.purchase("u1", 400, items: [("c", 1, 5)])
        let log = try EventReader.read(text: b.lines.joined(separator: "\n"))
        let (header, keys, rows) = TrainingExport.rows(log, config: FunnelConfig(), purchase: true)
        #expect(header == ["click", "user_id", "ts", "item_id", "position", "surface", "context.ranker", "user_impressions_before", "user_clicks_before", "purchase"])
        #expect(keys == ["ranker"])
        let t = { (s: Double) in String(b.ms(s)) }
        #expect(rows == [
            "1,u1,\(t(10)),a,1,home,,0,0,1",
            "1,u1,\(t(100)),a,2,home,,1,1,1",
            "0,u1,\(t(200)),b,3,home,x%2Cy,2,2,0",
            "0,u1,\(t(300)),c,1,search,,3,2,0",
            "1,u2,\(t(5)),d,2,home,,0,0,0",
        ])
        // A model's context columns are kept even when the log lacks them.
        let fixed = TrainingExport.rows(log, config: FunnelConfig(), contextKeys: ["device", "ranker"])
        #expect(fixed.header.contains("context.device") && fixed.rows[2] == "0,u1,\(t(200)),b,3,home,,x%2Cy,2,2")
        // Without the purchase column (the click models' table), the same rows less their last cell.
        #expect(TrainingExport.rows(log, config: FunnelConfig()).rows == rows.map { String($0.dropLast(2)) })
    }

    /// A context key holding the escaped characters is escaped in the header too (every row and the
    /// header have the same number of cells), and the header cell gives the key back.
    @Test func contextKeysAreEscapedInTheHeader() throws {
        var b = LogBuilder()
        b.impression("u", 10, item: "a", extra: #","context":{"k,e%y\"":"v"}"#)
        let log = try EventReader.read(text: b.lines.joined(separator: "\n"))
        let (header, keys, rows) = TrainingExport.rows(log, config: FunnelConfig())
        #expect(keys == ["k,e%y\""])
        #expect(header[6] == "context.k%2Ce%25y%22")
        #expect(TrainingExport.contextKey(ofColumn: header[6]) == "k,e%y\"")
        #expect(TrainingExport.contextKey(ofColumn: "item_id") == nil)
        #expect(rows.map { $0.split(separator: ",", omittingEmptySubsequences: false).count } == [header.count])
    }
}
