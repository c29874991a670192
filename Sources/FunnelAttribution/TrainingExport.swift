import Foundation
import FunnelBase
import FunnelConfig
import FunnelEvents

/// The click-model training table of an event log: one row per round (DESIGN.md §7, "Rounds"):
/// every served impression left after duplicates, bots and viewability, labelled 1 when a click
/// names that very impression inside the click window.
///
/// Rows are rounds rather than the report's counted impressions because a click model predicts the
/// click of one showing at its position: impression dedup would drop the re-showings of an item and
/// move their clicks to the first showing, at another position, so the position feature and the
/// base rate would be learnt from clicks that did not happen where the row says.
///
/// Columns: `click`, `user_id`, `ts` (epoch ms), `item_id`, `position`, `surface`, one
/// `context.<key>` per impression context key seen (empty when absent), `user_impressions_before`
/// and `user_clicks_before` (the user's rounds earlier in time, and how many of them
/// were clicked), and with `purchase` last a `purchase` column: 1 when the round was clicked and a
/// purchase was attributed through a click to the impression it counts as (the conversion models'
/// second label; never 1 without a click). The history counts use the labels of earlier impressions, whose clicks may come
/// after the current impression: with short attribution windows this look-ahead is small, and it is
/// the same at training and at serving time when history is read from the log.
///
/// Cells are plain comma-separated values: `%`, `,`, `"`, CR and LF inside a value are written as
/// `%25`, `%2C`, `%22`, `%0D`, `%0A` so that every row has the same number of cells.
public enum TrainingExport {
    public static let numericColumns = ["user_impressions_before", "user_clicks_before"]

    /// The header and the rows (each a line without its newline), in user order and, per user, in time order.
    /// With `contextKeys`, exactly those context columns (a model's), else every key seen.
    public static func rows(_ log: EventLog, config: FunnelConfig, contextKeys wanted: [String]? = nil,
                            purchase: Bool = false) -> (header: [String], contextKeys: [String], rows: [String]) {
        let rounds = Attributor.rounds(log, config: config)
        // Context keys present on rounds, in name order.
        var keyIDs = Set<Int32>()
        for k in rounds { for pair in log.impressionContext(at: Int(k.event)) { keyIDs.insert(pair.key) } }
        let names = wanted ?? keyIDs.map { log.labels[$0] }.sorted()
        let idOf = Dictionary(keyIDs.map { (log.labels[$0], $0) }, uniquingKeysWith: { a, _ in a })
        var column: [Int32: Int] = [:]
        for (j, name) in names.enumerated() { if let id = idOf[name] { column[id] = j } }
        let header = ["click", "user_id", "ts", "item_id", "position", "surface"] + names.map(contextColumn) + numericColumns + (purchase ? ["purchase"] : [])
        var rows: [String] = []
        rows.reserveCapacity(rounds.count)
        var user: Int32 = -1, seen = 0, clicked = 0
        var context = [String](repeating: "", count: names.count)
        for k in rounds {
            if k.user != user { user = k.user; seen = 0; clicked = 0 }
            let e = log.events[Int(k.event)]
            for j in context.indices { context[j] = "" }
            for pair in log.impressionContext(at: Int(k.event)) {
                if let j = column[pair.key] { context[j] = escape(log.labels[pair.value]) }
            }
            var cells = [k.clicked ? "1" : "0", escape(log.users[k.user]), String(k.ts), escape(log.items[k.item]), String(k.position),
                         e.surface >= 0 ? escape(log.labels[e.surface]) : "default"]
            cells += context
            cells += [String(seen), String(clicked)]
            if purchase { cells.append(k.purchased ? "1" : "0") }
            rows.append(cells.joined(separator: ","))
            seen += 1
            if k.clicked { clicked += 1 }
        }
        return (header, names, rows)
    }

    /// The header cell of a context key's column: `context.` and the key, escaped like any cell.
    public static func contextColumn(_ key: String) -> String { "context." + escape(key) }

    /// The context key of a header cell written by `contextColumn`, or nil for another column.
    public static func contextKey(ofColumn column: String) -> String? {
        guard column.hasPrefix("context.") else { return nil }
        let cell = String(column.dropFirst(8))
        guard cell.contains("%") else { return cell }
        var out = [UInt8]()
        let bytes = Array(cell.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x25, i + 2 < bytes.count, let v = UInt8(String(decoding: bytes[i + 1...i + 2], as: UTF8.self), radix: 16) {
                out.append(v); i += 3
            } else {
                out.append(bytes[i]); i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes a cell of the training table writes as `%XX` (uppercase hex): the escape itself,
    /// the separator, the quote and line breaks, so that no cell needs CSV quoting.
    static let escapedBytes: Set<UInt8> = [0x25, 0x2C, 0x22, 0x0A, 0x0D]

    static func escape(_ s: String) -> String {
        guard s.utf8.contains(where: escapedBytes.contains) else { return s }
        var out = ""
        for ch in s.unicodeScalars {
            if ch.isASCII, escapedBytes.contains(UInt8(ch.value)) {
                out += String(format: "%%%02X", ch.value)
            } else {
                out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}
