import Foundation
import FunnelBase

extension HTMLReport {
    /// The daily path of `funnel report --daily --format html` as one self-contained page: per
    /// treatment, a chart of the primary metric's lift day by day, its always-valid interval as a
    /// light band and its fixed-horizon interval as a darker one, with a labelled lift axis; then the
    /// table of days. `doc` is `DailyPath.document`.
    public static func renderDaily(_ doc: JSONValue) -> String {
        let metric = esc(TextReport.string(doc["metric"]) ?? "")
        let method = TextReport.string(doc["sequential"]) ?? "none"
        guard case .array(let days)? = doc["days"] else { return page("Daily path", "<p>No days in the events.</p>") }
        var variants: [String] = []
        for d in days {
            if case .array(let cs)? = d["comparisons"] {
                for c in cs { if let v = TextReport.string(c["variant"]), !variants.contains(v) { variants.append(v) } }
            }
        }
        var body = "<h1>Daily path — \(metric)</h1>\n"
        body += "<p>Each day is the report as of that day's end (UTC). Always-valid inference: <b>\(esc(method))</b>"
        body += method == "none" ? " (none: pass --sequential confidence-sequence or msprt for the always-valid band).</p>\n" : ".</p>\n"
        if variants.isEmpty {
            body += "<p class=\"empty\" data-chart=\"daily\">No day has a comparison with control yet: a variant needs users on both sides.</p>\n"
        }
        for (vi, variant) in variants.enumerated() {
            body += "<h2>\(esc(variant)) against control</h2>\n" + dailyChart(days, variant: variant, color: palette[(vi + 1) % palette.count])
        }
        body += "<h2>Days</h2>\n<table><tr><th>day</th><th>users</th><th>variant</th><th class=\"n\">lift</th><th>interval</th><th class=\"n\">p</th><th>always-valid interval</th><th class=\"n\">always-valid p</th><th>verdict so far</th></tr>"
        func pct(_ v: Double?) -> String { v.map { String(format: "%+.1f%%", $0 * 100) } ?? "—" }
        func interval(_ v: JSONValue?) -> String {
            if case .array(let b)? = v, b.count == 2, let lo = num(b[0]), let hi = num(b[1]) { return "[\(pct(lo)), \(pct(hi))]" }
            return "—"
        }
        for d in days {
            var users = "—"
            if case .object(let u)? = d["users"] { users = u.map { "\(esc($0.0)) \(num($0.1).map { String(Int($0)) } ?? "—")" }.joined(separator: ", ") }
            let day = esc(TextReport.string(d["day"]) ?? ""), verdict = esc(TextReport.string(d["verdict"]) ?? "")
            guard case .array(let cs)? = d["comparisons"], !cs.isEmpty else {
                body += "<tr><td>\(day)</td><td>\(users)</td><td colspan=\"6\">no comparison yet</td><td>\(verdict)</td></tr>"
                continue
            }
            for c in cs {
                body += "<tr><td>\(day)</td><td>\(users)</td><td>\(esc(TextReport.string(c["variant"]) ?? ""))</td>"
                body += "<td class=\"n\">\(pct(num(c["relative_lift"])))</td><td>\(interval(c["relative_ci"]))</td><td class=\"n\">\(TextReport.format(c["p_value"], digits: 3))</td>"
                body += "<td>\(interval(c["always_valid_relative_ci"]))</td><td class=\"n\">\(TextReport.format(c["always_valid_p_value"], digits: 3))</td><td>\(verdict)</td></tr>"
            }
        }
        body += "</table>\n"
        return page("Daily path — \(metric)", body)
    }

    /// One variant's lift by day: bands for the intervals, the lift as a line with a point per day,
    /// the zero line, and a lift axis with ticks at round percentages.
    static func dailyChart(_ days: [JSONValue], variant: String, color: String) -> String {
        struct Point { var day: Int; var label: String; var lift: Double?; var fixed: (Double, Double)?; var always: (Double, Double)? }
        func pair(_ v: JSONValue?) -> (Double, Double)? {
            if case .array(let b)? = v, b.count == 2, let lo = num(b[0]), let hi = num(b[1]) { return (lo, hi) }
            return nil
        }
        var points: [Point] = []
        for (k, d) in days.enumerated() {
            guard case .array(let cs)? = d["comparisons"], let c = cs.first(where: { TextReport.string($0["variant"]) == variant }) else { continue }
            points.append(Point(day: k, label: TextReport.string(d["day"]) ?? "", lift: num(c["relative_lift"]), fixed: pair(c["relative_ci"]),
                                always: pair(c["always_valid_relative_ci"])))
        }
        guard points.contains(where: { $0.lift != nil }) else {
            return "<p class=\"empty\" data-chart=\"daily\">No day has a defined lift for \(esc(variant)) (the control's value is 0 or missing).</p>\n"
        }
        // The vertical range covers every value and interval, and 0.
        var lo = 0.0, hi = 0.0
        for p in points {
            for v in [p.lift, p.fixed?.0, p.fixed?.1, p.always?.0, p.always?.1].compactMap({ $0 }) where v.isFinite { lo = min(lo, v); hi = max(hi, v) }
        }
        let axis = niceTicks(lo, hi)
        lo = axis.lo; hi = axis.hi
        let w = 720.0, h = 280.0, left = 64.0, right = 16.0, top = 12.0, bottom = 40.0
        let n = max(days.count - 1, 1)
        func x(_ day: Int) -> Double { days.count == 1 ? (left + w - right) / 2 : left + (w - left - right) * Double(day) / Double(n) }
        func y(_ v: Double) -> Double { top + (h - top - bottom) * (hi - v) / (hi - lo) }
        var svg = "<svg class=\"chart\" data-chart=\"daily\" width=\"\(Int(w))\" height=\"\(Int(h))\" role=\"img\" aria-label=\"lift of \(esc(variant)) by day\">"
        // Axis with ticks.
        svg += valueAxis(axis, y: y, left: left, right: w - right, signed: true)
        svg += "<text x=\"14\" y=\"\(f(top + (h - top - bottom) / 2))\" transform=\"rotate(-90 14 \(f(top + (h - top - bottom) / 2)))\" text-anchor=\"middle\">lift</text>"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(y(0)))\" x2=\"\(f(w - right))\" y2=\"\(f(y(0)))\" stroke=\"#555\" stroke-dasharray=\"4 3\"/>"
        // Day labels: at most ten.
        let every = max(1, Int((Double(days.count) / 10).rounded(.up)))
        for (k, d) in days.enumerated() where k % every == 0 || k == days.count - 1 {
            let label = String((TextReport.string(d["day"]) ?? "").suffix(5))
            svg += "<text x=\"\(f(x(k)))\" y=\"\(f(h - bottom + 16))\" text-anchor=\"middle\">\(esc(label))</text>"
        }
        // Bands: a polygon along the upper ends and back along the lower ends.
        func band(_ pick: (Point) -> (Double, Double)?, _ opacity: Double, _ name: String) -> String {
            let ps = points.compactMap { p in pick(p).map { (p.day, $0) } }
            guard !ps.isEmpty else { return "" }
            if ps.count == 1 {
                let (d, b) = ps[0]
                return "<line class=\"band \(name)\" x1=\"\(f(x(d)))\" y1=\"\(f(y(b.1)))\" x2=\"\(f(x(d)))\" y2=\"\(f(y(b.0)))\" stroke=\"\(color)\" stroke-width=\"10\" stroke-opacity=\"\(opacity)\"/>"
            }
            let upper = ps.map { "\(f(x($0.0))),\(f(y($0.1.1)))" }, lower = ps.reversed().map { "\(f(x($0.0))),\(f(y($0.1.0)))" }
            return "<polygon class=\"band \(name)\" points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(color)\" fill-opacity=\"\(opacity)\"/>"
        }
        svg += band({ $0.always }, 0.15, "always-valid")
        svg += band({ $0.fixed }, 0.30, "fixed")
        let line = points.compactMap { p in p.lift.map { "\(f(x(p.day))),\(f(y($0)))" } }
        if line.count > 1 { svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(line.joined(separator: " "))\"/>" }
        for p in points { if let v = p.lift { svg += "<circle class=\"mark\" cx=\"\(f(x(p.day)))\" cy=\"\(f(y(v)))\" r=\"3\" fill=\"\(color)\"><title>\(esc(p.label)): \(String(format: "%+.1f%%", v * 100))</title></circle>" } }
        svg += "<text x=\"\(f(w - right))\" y=\"\(f(top + 10))\" text-anchor=\"end\">light band: always-valid interval · dark band: fixed-horizon interval</text>"
        return svg + "</svg>\n"
    }
}
