import FunnelConfig
import FunnelEvents

/// The click-model training table of an event log: one row per counted impression (after the
/// counting rules: duplicates, bots, viewability, dedup), labelled 1 when at least one click was
/// counted for it.
///
/// Columns: `click`, `user_id`, `ts` (epoch ms), `item_id`, `position`, `surface`, one
/// `context.<key>` per impression context key seen (empty when absent), `user_impressions_before`
/// and `user_clicks_before` (the user's counted impressions earlier in time, and how many of them
/// were clicked). The history counts use the labels of earlier impressions, whose clicks may come
/// after the current impression: with short attribution windows this look-ahead is small, and it is
/// the same at training and at serving time when history is read from the log.
///
/// Cells are plain comma-separated values: `%`, `,`, `"`, CR and LF inside a value are written as
/// `%25`, `%2C`, `%22`, `%0D`, `%0A` so that every row has the same number of cells.
public enum TrainingExport {
    public static let numericColumns = ["user_impressions_before", "user_clicks_before"]

    /// The header and the rows (each a line without its newline), in user order and, per user, in time order.
    /// With `contextKeys`, exactly those context columns (a model's), else every key seen.
    public static func rows(_ log: EventLog, config: FunnelConfig, contextKeys wanted: [String]? = nil) -> (header: [String], contextKeys: [String], rows: [String]) {
        var kept = Attributor.keptImpressions(log, config: config)
        // Context keys present on counted impressions, in name order.
        var keyIDs = Set<Int32>()
        for k in kept { for pair in log.impressionContext(at: Int(k.event)) { keyIDs.insert(pair.key) } }
        let names = wanted ?? keyIDs.map { log.labels[$0] }.sorted()
        let idOf = Dictionary(keyIDs.map { (log.labels[$0], $0) }, uniquingKeysWith: { a, _ in a })
        var column: [Int32: Int] = [:]
        for (j, name) in names.enumerated() { if let id = idOf[name] { column[id] = j } }
        let header = ["click", "user_id", "ts", "item_id", "position", "surface"] + names.map { "context." + $0 } + numericColumns
        // Per user, time order (then input order).
        var start = 0
        while start < kept.count {
            var end = start
            while end < kept.count && kept[end].user == kept[start].user { end += 1 }
            kept[start..<end].sort { ($0.ts, $0.event) < ($1.ts, $1.event) }
            start = end
        }
        var rows: [String] = []
        rows.reserveCapacity(kept.count)
        var user: Int32 = -1, seen = 0, clicked = 0
        var context = [String](repeating: "", count: names.count)
        for k in kept {
            if k.user != user { user = k.user; seen = 0; clicked = 0 }
            let e = log.events[Int(k.event)]
            for j in context.indices { context[j] = "" }
            for pair in log.impressionContext(at: Int(k.event)) {
                if let j = column[pair.key] { context[j] = escape(log.labels[pair.value]) }
            }
            var cells = [k.clicks > 0 ? "1" : "0", escape(log.users[k.user]), String(k.ts), escape(log.items[k.item]), String(k.position),
                         e.surface >= 0 ? escape(log.labels[e.surface]) : "default"]
            cells += context
            cells += [String(seen), String(clicked)]
            rows.append(cells.joined(separator: ","))
            seen += 1
            if k.clicks > 0 { clicked += 1 }
        }
        return (header, names, rows)
    }

    static func escape(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == 0x25 || $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }) else { return s }
        var out = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "%": out += "%25"
            case ",": out += "%2C"
            case "\"": out += "%22"
            case "\n": out += "%0A"
            case "\r": out += "%0D"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}
