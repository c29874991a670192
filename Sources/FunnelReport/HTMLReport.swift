import Foundation
import FunnelBase

/// Renders the report document as one self-contained HTML file (no network): the verdict and
/// findings, and SVG charts — the funnel per variant with intervals, a forest plot of lifts, CTR by
/// position and the cohort mix — followed by the tables.
public enum HTMLReport {
    static let palette = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"]

    public static func render(_ doc: JSONValue) -> String {
        let experiment = esc(TextReport.string(doc["experiment"]) ?? "")
        var body = "<h1>Funnel report — \(experiment)</h1>\n"
        if let d = doc["diagnosis"] {
            let verdict = TextReport.string(d["verdict"]) ?? "inconclusive"
            body += "<p class=\"verdict \(verdict)\">Verdict: <b>\(esc(verdict.replacingOccurrences(of: "_", with: " ")))</b></p>\n<ul>"
            if case .array(let reasons)? = d["verdict_reasons"] { for r in reasons { body += "<li>\(esc(TextReport.string(r) ?? ""))</li>" } }
            body += "</ul>\n<p class=\"rule\">\(esc(TextReport.string(d["verdict_rule"]) ?? ""))</p>\n"
            if case .array(let findings)? = d["findings"] {
                body += "<h2>Findings</h2>\n<table><tr><th>severity</th><th>kind</th><th>finding</th></tr>"
                for f in findings {
                    let sev = TextReport.string(f["severity"]) ?? ""
                    body += "<tr class=\"\(sev)\"><td>\(sev)</td><td>\(esc(TextReport.string(f["kind"]) ?? ""))</td><td>\(esc(TextReport.string(f["message"]) ?? ""))</td></tr>"
                }
                body += "</table>\n"
            }
        }
        body += "<h2>Funnel per variant</h2>\n" + funnelChart(doc)
        body += "<h2>Lift against control (overall, with intervals)</h2>\n" + forestPlot(doc)
        body += "<h2>CTR by position</h2>\n" + positionChart(doc)
        body += "<h2>Clicks by item cohort (mix versus rate)</h2>\n" + cohortChart(doc)
        body += "<h2>Counts and metrics</h2>\n<pre>\(esc(TextReport.render(.object(countsOnly(doc)))))</pre>\n"
        return page("Funnel report — \(experiment)", body)
    }

    /// A self-contained page with the report's styles (and `extraStyle`'s rules); `title` is HTML.
    static func page(_ title: String, _ body: String, extraStyle: String = "") -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(title)</title>
        <style>
        body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1000px;color:#222}
        h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
        table{border-collapse:collapse;width:100%}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
        tr.critical td:first-child{color:#b00;font-weight:bold}tr.warning td:first-child{color:#b60}
        .verdict{font-size:18px}.verdict.do_not_ship b{color:#b00}.verdict.ship b{color:#080}.verdict.inconclusive b{color:#b60}
        .rule{color:#666;font-size:12px}pre{font-size:12px;background:#f8f8f8;padding:8px;overflow-x:auto}
        svg.chart{display:block;margin:8px 0}svg text{font-size:11px;fill:#333}\(extraStyle)
        </style></head><body>
        \(body)
        </body></html>

        """
    }

    static func countsOnly(_ doc: JSONValue) -> [(String, JSONValue)] {
        guard case .object(let members) = doc else { return [] }
        return members.filter { ["experiment", "control", "significance_level", "variants", "data_quality", "positions"].contains($0.0) }
    }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func num(_ v: JSONValue?) -> Double? {
        switch v {
        case .double(let d)?: return d
        case .int(let i)?: return Double(i)
        default: return nil
        }
    }

    static func f(_ x: Double) -> String { String(format: "%.1f", x) }

    static func variantNames(_ doc: JSONValue) -> [String] {
        if case .object(let v)? = doc["variants"] { return v.map(\.0) }
        return []
    }

    /// Small multiples: one panel per funnel rate, a bar per variant with its interval.
    static func funnelChart(_ doc: JSONValue) -> String {
        let metrics = ["ctr", "cart_rate", "post_click_cvr", "ctcvr"]
        let names = variantNames(doc)
        let panelW = 230.0, h = 200.0, top = 20.0, bottom = 40.0
        var svg = "<svg class=\"chart\" data-chart=\"funnel\" width=\"\(Int(panelW * Double(metrics.count)))\" height=\"\(Int(h))\" role=\"img\" aria-label=\"funnel rates per variant\">"
        for (k, metric) in metrics.enumerated() {
            let x0 = Double(k) * panelW
            let values = names.map { (num(doc["variants"]?[$0]?["metrics"]?[metric]?["value"]) ?? 0,
                                      doc["variants"]?[$0]?["metrics"]?[metric]?["ci"]) }
            let maxV = max(values.map { v -> Double in
                if case .array(let b)? = v.1, let hi = num(b.last) { return max(v.0, hi) }
                return v.0
            }.max() ?? 0, 1e-12) * 1.1
            let barW = (panelW - 40) / Double(max(names.count, 1))
            svg += "<text x=\"\(f(x0 + panelW / 2))\" y=\"14\" text-anchor=\"middle\" font-weight=\"bold\">\(metric)</text>"
            svg += "<line x1=\"\(f(x0 + 20))\" y1=\"\(f(h - bottom))\" x2=\"\(f(x0 + panelW - 20))\" y2=\"\(f(h - bottom))\" stroke=\"#999\"/>"
            for (i, (v, ci)) in values.enumerated() {
                let bh = (h - top - bottom) * v / maxV
                let bx = x0 + 20 + Double(i) * barW + 4
                svg += "<rect x=\"\(f(bx))\" y=\"\(f(h - bottom - bh))\" width=\"\(f(barW - 8))\" height=\"\(f(bh))\" fill=\"\(palette[i % palette.count])\"><title>\(esc(names[i])): \(v)</title></rect>"
                if case .array(let b)? = ci, let lo = num(b.first), let hi = num(b.last) {
                    let cx = bx + (barW - 8) / 2
                    let y1 = h - bottom - (h - top - bottom) * lo / maxV, y2 = h - bottom - (h - top - bottom) * hi / maxV
                    svg += "<line x1=\"\(f(cx))\" y1=\"\(f(y1))\" x2=\"\(f(cx))\" y2=\"\(f(y2))\" stroke=\"#222\"/>"
                    svg += "<line x1=\"\(f(cx - 5))\" y1=\"\(f(y1))\" x2=\"\(f(cx + 5))\" y2=\"\(f(y1))\" stroke=\"#222\"/><line x1=\"\(f(cx - 5))\" y1=\"\(f(y2))\" x2=\"\(f(cx + 5))\" y2=\"\(f(y2))\" stroke=\"#222\"/>"
                }
                svg += "<text x=\"\(f(bx + (barW - 8) / 2))\" y=\"\(f(h - bottom + 14))\" text-anchor=\"middle\">\(esc(names[i]))</text>"
                svg += "<text x=\"\(f(bx + (barW - 8) / 2))\" y=\"\(f(h - bottom + 28))\" text-anchor=\"middle\">\(String(format: "%.4g", v))</text>"
            }
        }
        return svg + "</svg>\n"
    }

    /// Relative lift of every overall comparison with its interval; zero marked.
    static func forestPlot(_ doc: JSONValue) -> String {
        guard case .array(let comparisons)? = doc["comparisons"] else { return "" }
        let rows = comparisons.filter { $0["segment"] == .null }
        let rowH = 22.0, left = 260.0, width = 760.0, h = Double(rows.count) * rowH + 40
        var lo = 0.0, hi = 0.0
        for r in rows {
            if case .array(let b)? = r["relative_ci"], let a = num(b.first), let c = num(b.last) { lo = min(lo, a); hi = max(hi, c) }
            if let l = num(r["relative_lift"]) { lo = min(lo, l); hi = max(hi, l) }
        }
        let span = max(hi - lo, 1e-9) * 1.1
        lo -= span * 0.05
        func x(_ v: Double) -> Double { left + (width - left - 80) * (v - lo) / span }
        var svg = "<svg class=\"chart\" data-chart=\"forest\" width=\"\(Int(width))\" height=\"\(Int(h))\" role=\"img\" aria-label=\"forest plot of relative lifts\">"
        svg += "<line x1=\"\(f(x(0)))\" y1=\"10\" x2=\"\(f(x(0)))\" y2=\"\(f(h - 20))\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>"
        svg += "<text x=\"\(f(x(0)))\" y=\"\(f(h - 6))\" text-anchor=\"middle\">0</text>"
        for (k, r) in rows.enumerated() {
            let y = 20 + Double(k) * rowH
            let label = "\(TextReport.string(r["metric"]) ?? "") · \(TextReport.string(r["variant"]) ?? "")"
            let sig = r["significant"] == .bool(true)
            svg += "<text x=\"\(f(left - 10))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(esc(label))</text>"
            if case .array(let b)? = r["relative_ci"], let a = num(b.first), let c = num(b.last) {
                svg += "<line x1=\"\(f(x(a)))\" y1=\"\(f(y))\" x2=\"\(f(x(c)))\" y2=\"\(f(y))\" stroke=\"#444\" stroke-width=\"2\"/>"
            }
            if let l = num(r["relative_lift"]) {
                let color = sig ? (l < 0 ? "#C44E52" : "#55A868") : "#888"
                svg += "<circle cx=\"\(f(x(l)))\" cy=\"\(f(y))\" r=\"5\" fill=\"\(color)\"><title>\(esc(label)): \(String(format: "%+.2f%%", l * 100))</title></circle>"
                svg += "<text x=\"\(f(width - 10))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(String(format: "%+.1f%%", l * 100))</text>"
            }
        }
        return svg + "</svg>\n"
    }

    /// CTR by position, one line per variant.
    static func positionChart(_ doc: JSONValue) -> String {
        guard case .object(let positions)? = doc["positions"] else { return "" }
        var all: [Int] = []
        var maxCTR = 1e-12
        for (_, v) in positions {
            if case .object(let m) = v {
                for (p, c) in m {
                    if let i = Int(p), !all.contains(i) { all.append(i) }
                    maxCTR = max(maxCTR, num(c["ctr"]) ?? 0)
                }
            }
        }
        all.sort()
        let w = 640.0, h = 240.0, left = 50.0, bottom = 30.0, top = 10.0
        func x(_ i: Int) -> Double { left + (w - left - 20) * Double(i) / Double(max(all.count - 1, 1)) }
        func y(_ v: Double) -> Double { h - bottom - (h - bottom - top) * v / (maxCTR * 1.1) }
        var svg = "<svg class=\"chart\" data-chart=\"positions\" width=\"\(Int(w))\" height=\"\(Int(h))\" role=\"img\" aria-label=\"CTR by position\">"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(h - bottom))\" x2=\"\(f(w - 20))\" y2=\"\(f(h - bottom))\" stroke=\"#999\"/>"
        for (k, p) in all.enumerated() { svg += "<text x=\"\(f(x(k)))\" y=\"\(f(h - bottom + 16))\" text-anchor=\"middle\">\(p)</text>" }
        svg += "<text x=\"\(f(left - 6))\" y=\"\(f(y(maxCTR)))\" text-anchor=\"end\">\(String(format: "%.3f", maxCTR))</text>"
        for (vi, (name, v)) in positions.enumerated() {
            guard case .object(let m) = v else { continue }
            let points = all.enumerated().compactMap { k, p -> String? in num(m.first { $0.0 == String(p) }?.1["ctr"]).map { "\(f(x(k))),\(f(y($0)))" } }
            svg += "<polyline fill=\"none\" stroke=\"\(palette[vi % palette.count])\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>"
            svg += "<text x=\"\(f(w - 20))\" y=\"\(f(top + 12 + Double(vi) * 14))\" text-anchor=\"end\" style=\"fill:\(palette[vi % palette.count])\">\(esc(name))</text>"
        }
        return svg + "</svg>\n"
    }

    /// Click share per cohort for control and treatment, with each cohort's post-click conversion.
    static func cohortChart(_ doc: JSONValue) -> String {
        guard case .array(let findings)? = doc["diagnosis"]?["findings"],
              let mix = findings.first(where: { TextReport.string($0["kind"]) == "mix_vs_rate" }),
              case .array(let cohorts)? = mix["cohorts"], !cohorts.isEmpty
        else { return "<p>No cohort decomposition (needs clicks in at least two cohorts).</p>\n" }
        let w = 760.0, h = 260.0, left = 40.0, bottom = 60.0, top = 20.0
        let maxShare = max(cohorts.map { max(num($0["control_click_share"]) ?? 0, num($0["treatment_click_share"]) ?? 0) }.max() ?? 0, 1e-9) * 1.15
        let maxRate = max(cohorts.map { max(num($0["control_post_click_cvr"]) ?? 0, num($0["treatment_post_click_cvr"]) ?? 0) }.max() ?? 0, 1e-9) * 1.15
        let groupW = (w - left - 20) / Double(cohorts.count)
        var svg = "<svg class=\"chart\" data-chart=\"cohorts\" width=\"\(Int(w))\" height=\"\(Int(h))\" role=\"img\" aria-label=\"click share and conversion by cohort\">"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(h - bottom))\" x2=\"\(f(w - 20))\" y2=\"\(f(h - bottom))\" stroke=\"#999\"/>"
        var rateLine: [[String]] = [[], []]
        for (k, c) in cohorts.enumerated() {
            let gx = left + Double(k) * groupW
            for (j, key) in ["control_click_share", "treatment_click_share"].enumerated() {
                let v = num(c[key]) ?? 0
                let bh = (h - bottom - top) * v / maxShare
                svg += "<rect x=\"\(f(gx + 4 + Double(j) * (groupW - 8) / 2))\" y=\"\(f(h - bottom - bh))\" width=\"\(f((groupW - 8) / 2 - 2))\" height=\"\(f(bh))\" fill=\"\(palette[j])\" opacity=\"0.8\"><title>\(key): \(String(format: "%.3f", v))</title></rect>"
            }
            for (j, key) in ["control_post_click_cvr", "treatment_post_click_cvr"].enumerated() {
                let r = num(c[key]) ?? 0
                rateLine[j].append("\(f(gx + groupW / 2)),\(f(h - bottom - (h - bottom - top) * r / maxRate))")
            }
            let label = (TextReport.string(c["cohort"]) ?? "").replacingOccurrences(of: "cvr_decile_", with: "d")
            svg += "<text x=\"\(f(gx + groupW / 2))\" y=\"\(f(h - bottom + 14))\" text-anchor=\"middle\">\(esc(label))</text>"
        }
        for j in 0..<2 {
            svg += "<polyline fill=\"none\" stroke=\"\(palette[j])\" stroke-width=\"2\" stroke-dasharray=\"5 3\" points=\"\(rateLine[j].joined(separator: " "))\"/>"
        }
        svg += "<text x=\"\(f(left))\" y=\"\(f(h - 20))\">bars: share of the variant's clicks (control \(palette[0]), treatment \(palette[1])); dashed lines: post-click conversion of the cohort</text>"
        svg += "<text x=\"\(f(left))\" y=\"\(f(h - 6))\">\(esc(TextReport.string(mix["message"]) ?? ""))</text>"
        return svg + "</svg>\n"
    }
}
