import Foundation
import FunnelAnalysis
import FunnelBase

/// Renders the report document as text for a terminal (fits 100 columns for two or three
/// variants): the verdict and the top findings first, then comparisons, counts, metrics, data
/// quality and CTR by position. Colour only when asked (on a TTY).
public enum TextReport {
    public static func render(_ doc: JSONValue, color: Bool = false) -> String {
        var out = ""
        func style(_ s: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
        func bold(_ s: String) -> String { style(s, "1") }
        let experiment = string(doc["experiment"]) ?? "?"
        let control = string(doc["control"]) ?? "?"
        out += bold("Funnel report — experiment \(experiment) (control: \(control))") + "\n\n"

        if let diagnosis = doc["diagnosis"] {
            let verdict = string(diagnosis["verdict"]) ?? "?"
            let code: String
            switch Verdict(rawValue: verdict) {
            case .ship?: code = "32;1"
            case .doNotShip?: code = "31;1"
            case .inconclusive?, nil: code = "33;1"
            }
            out += "Verdict: " + style(verdict.uppercased().replacingOccurrences(of: "_", with: " "), code) + "\n"
            if case .array(let reasons)? = diagnosis["verdict_reasons"] {
                for r in reasons { out += wrap("  • " + (string(r) ?? ""), indent: 4) }
            }
            if case .array(let findings)? = diagnosis["findings"], !findings.isEmpty {
                out += "\n" + bold("Findings") + "\n"
                let shown = findings.filter { string($0["severity"]) != "info" }.prefix(8)
                let list = shown.isEmpty ? Array(findings.prefix(5)) : Array(shown) + findings.filter { string($0["kind"]) == "mix_vs_rate" && string($0["severity"]) == "info" }.prefix(1)
                for f in list {
                    let sev = string(f["severity"]) ?? "info"
                    let tag = sev == "critical" ? style("[critical]", "31") : sev == "warning" ? style("[warning] ", "33") : "[info]    "
                    out += wrap("\(tag) \(string(f["kind"]) ?? ""): \(string(f["message"]) ?? "")", indent: 11)
                }
                let rest = findings.count - list.count
                if rest > 0 { out += "  (\(rest) more in the JSON and HTML reports)\n" }
            }
            out += "\n"
        }

        if case .array(let comparisons)? = doc["comparisons"] {
            // With sequential inference on, the always-valid interval and adjusted p-value follow,
            // and the star marks significance by them (as the verdict reads it).
            let method = string(doc["sequential"]?["method"])
            var header = ["metric", "variant", "abs diff", "lift", "lift interval", "p", "adj p"]
            if method != nil { header += ["always-valid lift interval", "adj always-valid p"] }
            var rows: [[String]] = [header + [""]]
            func interval(_ v: JSONValue?) -> String {
                if case .array(let b)? = v, b.count == 2 { return "[\(pct(b[0])), \(pct(b[1]))]" }
                return "—"
            }
            for c in comparisons where c["segment"] == .null {
                var row = [string(c["metric"]) ?? "", string(c["variant"]) ?? "", format(c["absolute_diff"], digits: 4),
                           pct(c["relative_lift"]), interval(c["relative_ci"]), format(c["p_value"], digits: 3), format(c["adjusted_p_value"], digits: 3)]
                var significant = c["significant"] == .bool(true)
                if method != nil {
                    let s = c["sequential"]
                    row += [interval(s?["relative_ci"]), format(s?["adjusted_p_value"], digits: 3)]
                    significant = s?["significant"] == .bool(true)
                }
                rows.append(row + [significant ? "*" : ""])
            }
            let title = method.map { "Comparisons with control (* significant by the always-valid p-value, \($0), after \(string(doc["correction"]) ?? "correction"))" }
                ?? "Comparisons with control (* significant after \(string(doc["correction"]) ?? "correction"))"
            out += bold(title) + "\n" + table(rows) + "\n"
        }

        guard case .object(let variants)? = doc["variants"] else { return out }
        let countKeys = ["users", "impressions", "clicks", "carts", "purchases", "revenue", "orders", "converting_users", "order_revenue"]
        var rows: [[String]] = [["variant", "users", "impr.", "clicks", "carts", "purch.", "revenue", "orders", "conv.users", "order rev."]]
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
                    var ci = ""
                    if case .array(let b)? = m?["ci"], b.count == 2 { ci = " [\(format(b[0], digits: 4)), \(format(b[1], digits: 4))]" }
                    row.append(format(m?["value"], digits: 4) + ci)
                }
                mrows.append(row)
            }
            let level = doc["significance_level"].flatMap { if case .double(let a) = $0 { return String(format: "%.0f %%", (1 - a) * 100) }; return nil } ?? "95 %"
            out += bold("Metrics (value [\(level) interval])") + "\n" + table(mrows) + "\n"
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
                case .array:
                    continue
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

        if case .object(let pb)? = doc["position_bias"] {
            let method = string(doc["position_bias"]?["method"]) ?? ""
            var rows: [[String]] = [["position", "propensity", "interval"]]
            if case .object(let positions)? = doc["position_bias"]?["positions"] {
                for (p, v) in positions.prefix(10) {
                    var ci = "—"
                    if case .array(let b)? = v["ci"], b.count == 2 { ci = "[\(format(b[0], digits: 3)), \(format(b[1], digits: 3))]" }
                    rows.append([p, format(v["propensity"], digits: 3), ci])
                }
            }
            var vrows: [[String]] = [["variant", "ctr", "ips ctr"]]
            if case .object(let variants)? = pb.first(where: { $0.0 == "variants" })?.1 {
                for (name, v) in variants { vrows.append([name, format(v["ctr"], digits: 4), format(v["ips_ctr"], digits: 4)]) }
            }
            out += "\n\n" + bold("Position bias (\(method)) and debiased CTR") + "\n" + table(rows) + "\n\n" + table(vrows)
        }
        return out
    }

    static func string(_ v: JSONValue?) -> String? {
        if case .string(let s)? = v { return s }
        return nil
    }

    static func pct(_ v: JSONValue?) -> String {
        if case .double(let d)? = v { return String(format: "%+.1f%%", d * 100) }
        return "—"
    }

    /// Wraps a line at 100 columns, indenting continuation lines.
    static func wrap(_ text: String, indent: Int, width: Int = 100) -> String {
        var out = ""
        var line = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            if line.count + word.count + 1 > width && !line.trimmingCharacters(in: .whitespaces).isEmpty {
                out += line + "\n"
                line = String(repeating: " ", count: indent)
            }
            line += (line.isEmpty || line.hasSuffix(" ") ? "" : " ") + word
        }
        return out + line + "\n"
    }

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
            out += line.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) + "\n"
            if k == 0 { out += String(repeating: "─", count: widths.reduce(0, +) + 2 * (widths.count - 1)) + "\n" }
        }
        return out
    }
}
