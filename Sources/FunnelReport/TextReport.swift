import Foundation

/// Renders the report document as aligned text tables for a terminal.
public enum TextReport {
    public static func render(_ doc: JSONValue, color: Bool = false) -> String {
        var out = ""
        func bold(_ s: String) -> String { color ? "\u{1B}[1m\(s)\u{1B}[0m" : s }
        let experiment = doc["experiment"].flatMap { if case .string(let s) = $0 { return s }; return nil } ?? "?"
        let control = doc["control"].flatMap { if case .string(let s) = $0 { return s }; return nil } ?? "?"
        out += bold("Funnel report — experiment \(experiment) (control: \(control))") + "\n\n"

        guard case .object(let variants)? = doc["variants"] else { return out }
        let countKeys = ["users", "impressions", "clicks", "carts", "purchases", "revenue", "orders", "converting_users", "order_revenue"]
        var rows: [[String]] = [["variant"] + countKeys]
        for (name, v) in variants {
            rows.append([name] + countKeys.map { key in
                if case .double(let d)? = v[key] { return String(format: "%.2f", d) }
                return format(v[key])
            })
        }
        out += bold("Counts") + "\n" + table(rows) + "\n"

        if let first = variants.first?.1, case .object(let metrics)? = first["metrics"] {
            var mrows: [[String]] = [["metric"] + variants.map { $0.0 }]
            for (metric, _) in metrics {
                var row = [metric]
                for (_, v) in variants {
                    let m = v["metrics"]?[metric]
                    let value = format(m?["value"], digits: 5)
                    var ci = ""
                    if case .array(let b)? = m?["ci"], b.count == 2 { ci = " [\(format(b[0], digits: 5)), \(format(b[1], digits: 5))]" }
                    row.append(value + ci)
                }
                mrows.append(row)
            }
            out += bold("Metrics (value [\(confidenceLabel(doc)) interval])") + "\n" + table(mrows) + "\n"
        }

        if case .object(let dq)? = doc["data_quality"] {
            var drows: [[String]] = [["data quality", "count"]]
            for (k, v) in dq {
                switch v {
                case .object(let inner) where k == "quarantined":
                    let total = inner.reduce(0) { acc, kv in if case .int(let i) = kv.1 { return acc + i }; return acc }
                    drows.append(["quarantined", String(total)])
                    for (reason, n) in inner where format(n) != "0" { drows.append(["  " + reason, format(n)]) }
                case .object(let inner) where k == "srm":
                    let p = inner.first { $0.0 == "p_value" }?.1
                    let flag = inner.first { $0.0 == "flag" }?.1 == .bool(true)
                    drows.append(["srm p-value", format(p, digits: 4) + (flag ? "  ← sample-ratio mismatch" : "")])
                default:
                    drows.append([k, format(v)])
                }
            }
            out += bold("Data quality") + "\n" + table(drows) + "\n"
        }

        if case .object(let positions)? = doc["positions"] {
            var prow: [[String]] = [["position"] + positions.map { "\($0.0) ctr" }]
            var allPositions: [String] = []
            for (_, v) in positions { if case .object(let m) = v { for (p, _) in m where !allPositions.contains(p) { allPositions.append(p) } } }
            allPositions.sort { (Int($0) ?? 0) < (Int($1) ?? 0) }
            for p in allPositions.prefix(10) {
                prow.append([p] + positions.map { format($0.1[p]?["ctr"], digits: 4) })
            }
            out += bold("CTR by position") + "\n" + table(prow)
        }
        return out
    }

    static func confidenceLabel(_ doc: JSONValue) -> String { "two-sided" }

    static func format(_ v: JSONValue?, digits: Int = 2) -> String {
        switch v {
        case .int(let i)?: return String(i)
        case .double(let d)?:
            if d == d.rounded() && abs(d) < 1e12 && digits <= 2 { return String(format: "%.2f", d) }
            return String(format: "%.\(digits)g", d)
        case .bool(let b)?: return b ? "true" : "false"
        case .string(let s)?: return s
        default: return "—"
        }
    }

    /// Left-aligns the first column and right-aligns the others.
    static func table(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        var widths = [Int](repeating: 0, count: header.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        var out = ""
        for (k, r) in rows.enumerated() {
            var line = ""
            for (i, c) in r.enumerated() where i < widths.count {
                let pad = String(repeating: " ", count: widths[i] - c.count)
                line += i == 0 ? c + pad : "  " + pad + c
            }
            out += line + "\n"
            if k == 0 { out += widths.enumerated().map { String(repeating: "─", count: $0.element + ($0.offset == 0 ? 0 : 2)) }.joined() + "\n" }
        }
        return out
    }
}
