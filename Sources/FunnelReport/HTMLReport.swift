import Foundation
import FunnelBase

/// Renders the report document as one self-contained HTML file (no network, no script): the
/// verdict and findings; SVG charts — the funnel per variant with intervals, a forest plot of lifts
/// grouped by metric on a labelled lift axis, CTR by position and the cohort mix — each replaced by
/// a plain sentence when the log gives it nothing to draw; then the comparisons, counts, metrics and
/// data quality as tables, and the segments as one collapsible table per dimension.
///
/// Every chart is a `<figure class="chart" data-chart="…">` holding either an SVG whose data marks
/// have `class="mark"` or a `<p class="empty">` sentence saying why there is no chart; axes' tick
/// labels have `class="tick"`. The browser check (scripts/check-html-report.sh) reads these.
public enum HTMLReport {
    static let palette = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"]

    public static func render(_ doc: JSONValue) -> String {
        let experiment = esc(TextReport.string(doc["experiment"]) ?? "")
        let roles = Roles(doc)
        var body = "<h1>Funnel report — \(experiment)</h1>\n" + settingsLine(doc, roles)
        if let d = doc["diagnosis"] {
            let verdict = TextReport.string(d["verdict"]) ?? "inconclusive"
            body += "<p class=\"verdict \(verdict)\">Verdict: <b>\(esc(verdict.replacingOccurrences(of: "_", with: " ")))</b></p>\n<ul>"
            if case .array(let reasons)? = d["verdict_reasons"] { for r in reasons { body += "<li>\(esc(TextReport.string(r) ?? ""))</li>" } }
            body += "</ul>\n<p class=\"rule\">\(esc(TextReport.string(d["verdict_rule"]) ?? ""))</p>\n"
            if case .array(let findings)? = d["findings"], !findings.isEmpty {
                body += "<h2>Findings</h2>\n<table><tr><th>severity</th><th>kind</th><th>finding</th></tr>"
                for f in findings {
                    let sev = TextReport.string(f["severity"]) ?? ""
                    body += "<tr class=\"\(sev)\"><td>\(sev)</td><td>\(esc(TextReport.string(f["kind"]) ?? ""))</td><td>\(esc(TextReport.string(f["message"]) ?? ""))</td></tr>"
                }
                body += "</table>\n"
            }
        }
        body += "<h2>Funnel per variant</h2>\n" + funnelCharts(doc)
        body += "<h2>Lift against control (overall)</h2>\n" + forestPlot(doc, roles)
        body += "<h2>CTR by position</h2>\n" + positionChart(doc)
        body += "<h2>Clicks by item cohort (mix versus rate)</h2>\n" + cohortCharts(doc)
        body += "<h2>Comparisons with control</h2>\n" + comparisonsTable(doc, roles)
        body += "<h2>Counts</h2>\n" + countsTable(doc)
        body += "<h2>Metrics</h2>\n" + metricsTable(doc)
        body += "<h2>Data quality</h2>\n" + dataQualityTable(doc)
        body += "<h2>Segments</h2>\n" + segmentTables(doc, roles)
        body += positionBiasTables(doc) + cupedTable(doc)
        return page("Funnel report — \(experiment)", body)
    }

    /// A self-contained page with the report's styles; `title` is HTML.
    static func page(_ title: String, _ body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(title)</title>
        <style>
        body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1000px;color:#222}
        h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
        table{border-collapse:collapse;width:100%;margin:6px 0}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
        td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}td.n{white-space:nowrap}details table{font-size:13px}
        tr.critical td:first-child{color:#b00;font-weight:bold}tr.warning td:first-child{color:#b60}
        tr.sig td{font-weight:600}tr.sig.up td.mark{color:#2a7a3a}tr.sig.down td.mark{color:#b00}tr.flag td{color:#b00;font-weight:600}
        .verdict{font-size:18px}.verdict.do_not_ship b{color:#b00}.verdict.ship b{color:#080}.verdict.inconclusive b{color:#b60}
        .rule,.meta,.note{color:#666;font-size:12px}
        figure.chart{margin:8px 0}figure.chart figcaption{font-weight:bold;font-size:13px}figure.chart figcaption.note{font-weight:normal;font-size:12px}
        p.empty{color:#555;font-style:italic;border:1px dashed #ccc;padding:8px 10px;margin:6px 0}
        .panels{display:flex;flex-wrap:wrap;gap:8px}.panels figure.chart{width:236px}
        svg.chart{display:block}svg text{font-size:11px;fill:#333}svg text.group{font-weight:bold}
        details{margin:6px 0}summary{cursor:pointer;font-weight:600}
        @media print{body{margin:0;max-width:none}figure.chart,svg.chart,tr{break-inside:avoid}h2{break-after:avoid}
        details::details-content{content-visibility:visible;display:block}summary{list-style:none}}
        </style></head><body>
        \(body)
        </body></html>

        """
    }

    // MARK: Helpers

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

    static func pair(_ v: JSONValue?) -> (Double, Double)? {
        if case .array(let b)? = v, b.count == 2, let lo = num(b[0]), let hi = num(b[1]), lo.isFinite, hi.isFinite { return (lo, hi) }
        return nil
    }

    static func members(_ v: JSONValue?) -> [(String, JSONValue)] {
        if case .object(let m)? = v { return m }
        return []
    }

    /// Round ticks covering [lo, hi]: the first of 1, 2, 5 or 10 × 10^k (10^k the order of a fifth of
    /// the range) giving at most 8 steps, so 3 to 9 ticks; an empty range is widened to ±1 %.
    static func niceTicks(_ lo: Double, _ hi: Double) -> Axis {
        var lo = lo, hi = hi
        if !(hi - lo > 1e-12) { lo -= 0.01; hi += 0.01 }
        let magnitude = pow(10, floor(log10((hi - lo) / 5)))
        let step = [1.0, 2.0, 5.0, 10.0].map { $0 * magnitude }.first { (hi - lo) / $0 <= 8 } ?? 10 * magnitude
        lo = floor(lo / step + 1e-9) * step
        hi = ceil(hi / step - 1e-9) * step
        var values: [Double] = []
        var k = 0
        while lo + Double(k) * step <= hi + step / 2 {
            let v = lo + Double(k) * step
            values.append(abs(v) < step * 1e-9 ? 0 : v)
            k += 1
        }
        return (lo, hi, step, values)
    }

    /// A tick value as a percentage with as many decimals as the step needs; `signed` for lifts.
    static func percentTick(_ v: Double, step: Double, signed: Bool) -> String {
        let decimals = max(0, Int(ceil(-log10(step * 100) - 1e-9)))
        return String(format: signed ? "%+.\(decimals)f%%" : "%.\(decimals)f%%", v * 100)
    }

    typealias Axis = (lo: Double, hi: Double, step: Double, values: [Double])

    /// A vertical value axis: a light grid line across the plot (from `left` to `right`) and a
    /// percentage label at each tick; `y` maps a value to its height.
    static func valueAxis(_ axis: Axis, y: (Double) -> Double, left: Double, right: Double, signed: Bool) -> String {
        axis.values.map { t in
            "<line x1=\"\(f(left - 3))\" y1=\"\(f(y(t)))\" x2=\"\(f(right))\" y2=\"\(f(y(t)))\" stroke=\"#eee\"/>"
                + "<text class=\"tick\" x=\"\(f(left - 6))\" y=\"\(f(y(t) + 4))\" text-anchor=\"end\">\(percentTick(t, step: axis.step, signed: signed))</text>"
        }.joined()
    }

    static func percent(_ v: Double?, signed: Bool = false, digits: Int = 1) -> String {
        guard let v, v.isFinite else { return "—" }
        return String(format: signed ? "%+.\(digits)f%%" : "%.\(digits)f%%", v * 100)
    }

    static func empty(_ chart: String, _ sentence: String, caption: String? = nil) -> String {
        "<figure class=\"chart\" data-chart=\"\(chart)\">" + (caption.map { "<figcaption>\(esc($0))</figcaption>" } ?? "")
            + "<p class=\"empty\">\(esc(sentence))</p></figure>\n"
    }

    /// The primary metric, the guardrails and how significance is read (the text report's rule:
    /// by the always-valid p-value when sequential inference is on).
    struct Roles {
        var primary: String?
        var guardrails: [String] = []
        var sequential: String?
        var correction: String

        init(_ doc: JSONValue) {
            primary = TextReport.string(doc["diagnosis"]?["primary_metric"])
            if case .array(let g)? = doc["diagnosis"]?["guardrail_metrics"] { guardrails = g.compactMap { TextReport.string($0) } }
            sequential = TextReport.string(doc["sequential"]?["method"])
            correction = TextReport.string(doc["correction"]) ?? "correction"
        }

        func role(_ metric: String) -> String? {
            metric == primary ? "primary" : guardrails.contains(metric) ? "guardrail" : nil
        }

        func significant(_ c: JSONValue) -> Bool {
            sequential != nil ? c["sequential"]?["significant"] == .bool(true) : c["significant"] == .bool(true)
        }

        var legend: String {
            sequential.map { "* significant by the always-valid p-value (\($0)) after \(correction)" } ?? "* significant after \(correction)"
        }

        /// Metrics in the order the forest plot and tables list them: the primary, the guardrails,
        /// then the others as the document lists them.
        func ordered(_ metrics: [String]) -> [String] {
            let head = ([primary].compactMap { $0 } + guardrails).filter(metrics.contains)
            return head + metrics.filter { !head.contains($0) }
        }
    }

    static func settingsLine(_ doc: JSONValue, _ roles: Roles) -> String {
        var parts = ["control: <b>\(esc(TextReport.string(doc["control"]) ?? "?"))</b>"]
        if let a = num(doc["significance_level"]) { parts.append("significance level \(String(format: "%g", a))") }
        parts.append("correction \(esc(roles.correction))")
        if let s = roles.sequential { parts.append("sequential inference \(esc(s))") }
        if let p = roles.primary { parts.append("primary metric <b>\(esc(p))</b>") }
        if !roles.guardrails.isEmpty { parts.append("guardrails \(roles.guardrails.map(esc).joined(separator: ", "))") }
        return "<p class=\"meta\">\(parts.joined(separator: " · "))</p>\n"
    }

    // MARK: Charts

    /// Small multiples: one panel per funnel rate, a bar per variant with its interval and a value
    /// axis. A rate whose stage has no events in any variant is a sentence instead of a panel.
    static func funnelCharts(_ doc: JSONValue) -> String {
        let names = members(doc["variants"]).map(\.0)
        guard !names.isEmpty else { return empty("funnel", "No analysed users in any variant: there is no funnel to draw.") }
        // (metric, the count that makes its numerator, what the log lacks when that count is 0)
        let stages: [(String, String, String)] = [
            ("ctr", "clicks", "No clicks among the analysed users' impressions: ctr is 0 in every variant."),
            ("cart_rate", "carts", "The log has no add-to-cart events for the analysed users: cart_rate is 0 in every variant, so there is no panel."),
            ("post_click_cvr", "purchases", "No purchase was attributed to a click: post-click conversion is 0 (or undefined) in every variant."),
            ("ctcvr", "purchases", "No purchase was attributed to an impression: ctcvr is 0 in every variant."),
        ]
        var out = "<div class=\"panels\">"
        for (metric, count, sentence) in stages {
            let total = names.reduce(0.0) { $0 + (num(doc["variants"]?[$1]?[count]) ?? 0) }
            if total == 0 {
                out += empty("funnel-\(metric)", sentence, caption: metric)
                continue
            }
            if metric == "post_click_cvr" && names.allSatisfy({ (num(doc["variants"]?[$0]?["clicks"]) ?? 0) == 0 }) {
                out += empty("funnel-\(metric)", "No clicks in any variant: post-click conversion is undefined.", caption: metric)
                continue
            }
            out += funnelPanel(doc, metric: metric, names: names)
        }
        return out + "</div>\n"
    }

    static func funnelPanel(_ doc: JSONValue, metric: String, names: [String]) -> String {
        let w = 236.0, h = 210.0, left = 44.0, right = 6.0, top = 10.0, bottom = 44.0
        let values = names.map { name -> (Double?, (Double, Double)?) in
            let m = doc["variants"]?[name]?["metrics"]?[metric]
            // The four rates are shares: an interval reaching past 0 or 1 (the delta method on few
            // users) is drawn up to the bound.
            return (num(m?["value"]).flatMap { $0.isFinite ? $0 : nil }, pair(m?["ci"]).map { (max($0.0, 0), min($0.1, 1)) })
        }
        let top1 = values.map { max($0.0 ?? 0, $0.1?.1 ?? 0) }.max() ?? 0
        let axis = niceTicks(0, max(top1, 1e-9))
        func y(_ v: Double) -> Double { top + (h - top - bottom) * (axis.hi - v) / (axis.hi - axis.lo) }
        var svg = "<figure class=\"chart\" data-chart=\"funnel-\(metric)\"><figcaption>\(metric)</figcaption>"
        svg += "<svg class=\"chart\" width=\"\(Int(w))\" height=\"\(Int(h))\" role=\"img\" aria-label=\"\(metric) per variant\">"
        svg += valueAxis(axis, y: y, left: left, right: w - right, signed: false)
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(y(0)))\" x2=\"\(f(w - right))\" y2=\"\(f(y(0)))\" stroke=\"#999\"/>"
        let barW = (w - left - right) / Double(names.count)
        for (i, (value, ci)) in values.enumerated() {
            let bx = left + Double(i) * barW + 4, bw = barW - 8, cx = bx + bw / 2
            let name = esc(names[i])
            if let v = value {
                let note = ci == nil ? " (no interval)" : ""
                svg += "<rect class=\"mark\" x=\"\(f(bx))\" y=\"\(f(y(v)))\" width=\"\(f(bw))\" height=\"\(f(y(0) - y(v)))\" fill=\"\(palette[i % palette.count])\"><title>\(name): \(percent(v, digits: 2))\(note)</title></rect>"
                if let (lo, hi) = ci {
                    svg += "<path d=\"M\(f(cx)) \(f(y(lo)))V\(f(y(hi)))M\(f(cx - 5)) \(f(y(lo)))h10M\(f(cx - 5)) \(f(y(hi)))h10\" stroke=\"#222\" fill=\"none\"/>"
                }
                svg += "<text x=\"\(f(cx))\" y=\"\(f(h - bottom + 28))\" text-anchor=\"middle\">\(percent(v, digits: 2))</text>"
            } else {
                svg += "<text x=\"\(f(cx))\" y=\"\(f(y(0) - 6))\" text-anchor=\"middle\">undefined</text>"
            }
            svg += "<text x=\"\(f(cx))\" y=\"\(f(h - bottom + 14))\" text-anchor=\"middle\">\(name)</text>"
        }
        return svg + "</svg></figure>"
    }

    /// Relative lift of every overall comparison with its interval, grouped by metric (primary
    /// metric first, then the guardrails) with the variants inside, on a lift axis with round ticks.
    /// Significant rows (as the text report reads significance) have a filled point and a star.
    static func forestPlot(_ doc: JSONValue, _ roles: Roles) -> String {
        guard case .array(let comparisons)? = doc["comparisons"] else { return empty("forest", "The report has no comparisons.") }
        let overall = comparisons.filter { $0["segment"] == .null }
        guard !overall.isEmpty else { return empty("forest", "No comparison with control: the report has one variant, or the control has no users.") }
        var metrics: [String] = []
        for c in overall { if let m = TextReport.string(c["metric"]), !metrics.contains(m) { metrics.append(m) } }
        metrics = roles.ordered(metrics)
        let drawable = overall.filter { num($0["relative_lift"])?.isFinite == true }
        guard !drawable.isEmpty else {
            return empty("forest", "No comparison has a relative lift: the control's value is 0 for every metric.")
        }
        var lo = 0.0, hi = 0.0
        for c in drawable {
            for v in [num(c["relative_lift"]), pair(c["relative_ci"])?.0, pair(c["relative_ci"])?.1].compactMap({ $0 }) where v.isFinite {
                lo = min(lo, v); hi = max(hi, v)
            }
        }
        let axis = niceTicks(lo, hi)
        let rowH = 20.0, groupH = 22.0, left = 230.0, width = 960.0, right = 150.0, top = 8.0
        func x(_ v: Double) -> Double { left + (width - left - right) * (v - axis.lo) / (axis.hi - axis.lo) }
        var rows = ""
        var yPos = top
        for metric in metrics {
            let role = roles.role(metric)
            yPos += groupH
            rows += "<text class=\"group\" x=\"8\" y=\"\(f(yPos - 6))\">\(esc(metric))\(role.map { " (\($0))" } ?? "")</text>"
            if role != nil {
                rows += "<rect x=\"0\" y=\"\(f(yPos - groupH + 4))\" width=\"4\" height=\"\(f(groupH - 4))\" fill=\"\(role == "primary" ? "#222" : "#b60")\"/>"
            }
            for c in overall where TextReport.string(c["metric"]) == metric {
                let variant = TextReport.string(c["variant"]) ?? ""
                let cy = yPos + rowH / 2
                rows += "<text x=\"\(f(left - 10))\" y=\"\(f(cy + 4))\" text-anchor=\"end\">\(esc(variant))</text>"
                let sig = roles.significant(c)
                let interval = roles.sequential != nil ? pair(c["sequential"]?["relative_ci"]) ?? pair(c["relative_ci"]) : pair(c["relative_ci"])
                if let l = num(c["relative_lift"]), l.isFinite {
                    if let (a, b) = interval {
                        rows += "<line x1=\"\(f(x(a)))\" y1=\"\(f(cy))\" x2=\"\(f(x(b)))\" y2=\"\(f(cy))\" stroke=\"#444\" stroke-width=\"2\"/>"
                    }
                    let color = sig ? (l < 0 ? "#C44E52" : "#55A868") : "#fff"
                    let label = "\(metric) · \(variant): \(percent(l, signed: true, digits: 2))" + (interval.map { " [\(percent($0.0, signed: true)), \(percent($0.1, signed: true))]" } ?? " (no interval)")
                    rows += "<circle class=\"mark\" cx=\"\(f(x(l)))\" cy=\"\(f(cy))\" r=\"5\" fill=\"\(color)\" stroke=\"\(sig ? color : "#666")\" stroke-width=\"1.5\"><title>\(esc(label))</title></circle>"
                    let text = percent(l, signed: true) + (interval.map { " [\(percent($0.0, signed: true)), \(percent($0.1, signed: true))]" } ?? " (no interval)") + (sig ? " *" : "")
                    rows += "<text x=\"\(f(width - 6))\" y=\"\(f(cy + 4))\" text-anchor=\"end\"\(sig ? " font-weight=\"bold\"" : "")>\(esc(text))</text>"
                } else {
                    rows += "<text x=\"\(f(left))\" y=\"\(f(cy + 4))\" fill=\"#666\">\(esc(noLift(doc, metric: metric, variant: variant)))</text>"
                }
                yPos += rowH
            }
        }
        let h = yPos + 44
        var svg = "<figure class=\"chart\" data-chart=\"forest\"><svg class=\"chart\" width=\"\(Int(width))\" height=\"\(Int(h))\" role=\"img\" aria-label=\"forest plot of relative lifts by metric\">"
        for t in axis.values {
            svg += "<line x1=\"\(f(x(t)))\" y1=\"\(f(top))\" x2=\"\(f(x(t)))\" y2=\"\(f(yPos + 4))\" stroke=\"\(t == 0 ? "#555" : "#eee")\"\(t == 0 ? " stroke-dasharray=\"4 3\"" : "")/>"
            svg += "<text class=\"tick\" x=\"\(f(x(t)))\" y=\"\(f(yPos + 18))\" text-anchor=\"middle\">\(percentTick(t, step: axis.step, signed: true))</text>"
        }
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(yPos + 4))\" x2=\"\(f(width - right))\" y2=\"\(f(yPos + 4))\" stroke=\"#999\"/>"
        svg += "<text x=\"\(f((left + width - right) / 2))\" y=\"\(f(yPos + 36))\" text-anchor=\"middle\">relative lift against control"
        svg += roles.sequential != nil ? " (always-valid intervals)" : " (\(Int(((1 - (num(doc["significance_level"]) ?? 0.05)) * 100).rounded())) % intervals)"
        svg += "</text>" + rows + "</svg>"
        svg += "<figcaption class=\"note\">Filled points: \(esc(String(roles.legend.dropFirst(2)))); hollow points: not significant. Bars at the left mark the primary metric (black) and the guardrails (orange).</figcaption></figure>\n"
        return svg
    }

    /// Why a comparison has no relative lift: a metric undefined in a variant (a rate without its
    /// denominator, such as post-click conversion without clicks), or a control value of 0.
    static func noLift(_ doc: JSONValue, metric: String, variant: String) -> String {
        let control = TextReport.string(doc["control"]) ?? "control"
        for name in [variant, control] {
            if let m = doc["variants"]?[name]?["metrics"]?[metric], num(m["value"]) == nil {
                return "no lift: \(metric) is undefined in \(name)"
            }
        }
        return "no lift: the control's \(metric) is 0"
    }

    /// CTR by position, one line with a point per position per variant, on a CTR axis with ticks.
    static func positionChart(_ doc: JSONValue) -> String {
        let positions = members(doc["positions"])
        var all: [Int] = []
        var maxCTR = 0.0
        for (_, v) in positions {
            for (p, c) in members(v) {
                if let i = Int(p), !all.contains(i) { all.append(i) }
                maxCTR = max(maxCTR, num(c["ctr"]) ?? 0)
            }
        }
        all.sort()
        guard !all.isEmpty else { return empty("positions", "No counted impression has a position.") }
        if all.count == 1 {
            let ctrs = positions.map { "\($0.0) \(percent(num($0.1[String(all[0])]?["ctr"]), digits: 2))" }.joined(separator: ", ")
            return empty("positions", "Every counted impression is at position \(all[0]), so there is no curve by position to draw. CTR at position \(all[0]): \(ctrs).")
        }
        if maxCTR == 0 { return empty("positions", "No impression at any position was clicked: CTR is 0 at every position.") }
        let w = 700.0, h = 250.0, left = 56.0, right = 110.0, bottom = 36.0, top = 10.0
        let axis = niceTicks(0, maxCTR)
        func x(_ k: Int) -> Double { left + 10 + (w - left - right - 20) * Double(k) / Double(all.count - 1) }
        func y(_ v: Double) -> Double { top + (h - top - bottom) * (axis.hi - v) / (axis.hi - axis.lo) }
        var svg = "<figure class=\"chart\" data-chart=\"positions\"><svg class=\"chart\" width=\"\(Int(w))\" height=\"\(Int(h))\" role=\"img\" aria-label=\"CTR by position\">"
        svg += valueAxis(axis, y: y, left: left, right: w - right, signed: false)
        let every = max(1, Int((Double(all.count) / 20).rounded(.up)))
        for (k, p) in all.enumerated() where k % every == 0 || k == all.count - 1 {
            svg += "<text x=\"\(f(x(k)))\" y=\"\(f(h - bottom + 16))\" text-anchor=\"middle\">\(p)</text>"
        }
        svg += "<text x=\"\(f((left + w - right) / 2))\" y=\"\(f(h - 4))\" text-anchor=\"middle\">position (1 = top)</text>"
        for (vi, (name, v)) in positions.enumerated() {
            let color = palette[vi % palette.count]
            let m = members(v)
            let points = all.enumerated().compactMap { k, p -> (Int, Double)? in num(m.first { $0.0 == String(p) }?.1["ctr"]).map { (k, $0) } }
            if points.count > 1 {
                svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.map { "\(f(x($0.0))),\(f(y($0.1)))" }.joined(separator: " "))\"/>"
            }
            for (k, c) in points {
                svg += "<circle class=\"mark\" cx=\"\(f(x(k)))\" cy=\"\(f(y(c)))\" r=\"3\" fill=\"\(color)\"><title>\(esc(name)), position \(all[k]): \(percent(c, digits: 2))</title></circle>"
            }
            svg += "<text x=\"\(f(w - right + 10))\" y=\"\(f(top + 12 + Double(vi) * 14))\" style=\"fill:\(color)\">\(esc(name))</text>"
        }
        return svg + "</svg></figure>\n"
    }

    /// Per treatment, the share of its clicks and of the control's in each item cohort (bars) with
    /// each cohort's post-click conversion (dashed lines); a sentence when the decomposition has
    /// nothing to compare.
    static func cohortCharts(_ doc: JSONValue) -> String {
        guard case .array(let findings)? = doc["diagnosis"]?["findings"] else {
            return empty("cohorts", "No diagnosis in the report: there is no cohort decomposition.")
        }
        let mixes = findings.filter { TextReport.string($0["kind"]) == "mix_vs_rate" }
        guard !mixes.isEmpty else {
            return empty("cohorts", "No cohort decomposition: it needs clicks in control and in a treatment, and items whose post-click conversion can be ranked.")
        }
        var out = ""
        for mix in mixes {
            let variant = TextReport.string(mix["variant"]) ?? "treatment"
            let chart = mixes.count == 1 ? "cohorts" : "cohorts-\(variant)"
            let caption = "\(variant) against control"
            guard case .array(let cohorts)? = mix["cohorts"], cohorts.count >= 2 else {
                out += empty(chart, "All clicks of control and \(variant) fall in one item cohort: there is no mix to compare.", caption: caption)
                continue
            }
            let shared = cohorts.contains { (num($0["control_click_share"]) ?? 0) > 0 && (num($0["treatment_click_share"]) ?? 0) > 0 }
            if !shared {
                out += empty(chart, "No item cohort has clicks in both control and \(variant) (each variant's clicks went to different items): the change in post-click conversion is all mix, and rates within a cohort cannot be compared. \(TextReport.string(mix["message"]) ?? "")", caption: caption)
                continue
            }
            out += cohortChart(mix, cohorts: cohorts, chart: chart, caption: caption)
        }
        return out
    }

    static func cohortChart(_ mix: JSONValue, cohorts: [JSONValue], chart: String, caption: String) -> String {
        let w = 760.0, h = 250.0, left = 52.0, right = 52.0, bottom = 30.0, top = 12.0
        let shares = niceTicks(0, max(cohorts.map { max(num($0["control_click_share"]) ?? 0, num($0["treatment_click_share"]) ?? 0) }.max() ?? 0, 1e-9))
        let rates = niceTicks(0, max(cohorts.map { max(num($0["control_post_click_cvr"]) ?? 0, num($0["treatment_post_click_cvr"]) ?? 0) }.max() ?? 0, 1e-9))
        let groupW = (w - left - right) / Double(cohorts.count)
        func y(_ v: Double, _ axis: Axis) -> Double { top + (h - top - bottom) * (axis.hi - v) / (axis.hi - axis.lo) }
        var svg = "<figure class=\"chart\" data-chart=\"\(chart)\"><figcaption>\(esc(caption))</figcaption>"
        svg += "<svg class=\"chart\" width=\"\(Int(w))\" height=\"\(Int(h))\" role=\"img\" aria-label=\"click share and conversion by cohort\">"
        svg += valueAxis(shares, y: { y($0, shares) }, left: left, right: w - right, signed: false)
        for t in rates.values {
            svg += "<text class=\"tick\" x=\"\(f(w - right + 6))\" y=\"\(f(y(t, rates) + 4))\">\(percentTick(t, step: rates.step, signed: false))</text>"
        }
        var rateLine: [[String]] = [[], []]
        for (k, c) in cohorts.enumerated() {
            let gx = left + Double(k) * groupW
            for (j, key) in ["control_click_share", "treatment_click_share"].enumerated() {
                let v = num(c[key]) ?? 0
                let bw = (groupW - 8) / 2 - 2
                svg += "<rect class=\"mark\" x=\"\(f(gx + 4 + Double(j) * (groupW - 8) / 2))\" y=\"\(f(y(v, shares)))\" width=\"\(f(bw))\" height=\"\(f(y(0, shares) - y(v, shares)))\" fill=\"\(palette[j])\" opacity=\"0.8\"><title>\(key): \(percent(v))</title></rect>"
            }
            for (j, key) in ["control_post_click_cvr", "treatment_post_click_cvr"].enumerated() {
                rateLine[j].append("\(f(gx + groupW / 2)),\(f(y(num(c[key]) ?? 0, rates)))")
            }
            let label = (TextReport.string(c["cohort"]) ?? "").replacingOccurrences(of: "cvr_decile_", with: "d")
            svg += "<text x=\"\(f(gx + groupW / 2))\" y=\"\(f(h - bottom + 14))\" text-anchor=\"middle\">\(esc(label))</text>"
        }
        for j in 0..<2 {
            svg += "<polyline fill=\"none\" stroke=\"\(palette[j])\" stroke-width=\"2\" stroke-dasharray=\"5 3\" points=\"\(rateLine[j].joined(separator: " "))\"/>"
        }
        svg += "</svg><figcaption class=\"note\">Bars (left axis): share of the variant's clicks in each cohort of items ranked by pooled post-click conversion (d1 lowest), control in blue, treatment in orange. Dashed lines (right axis): the cohort's post-click conversion. \(esc(TextReport.string(mix["message"]) ?? ""))</figcaption></figure>\n"
        return svg
    }

    // MARK: Tables

    static func cell(_ text: String, numeric: Bool = true) -> String { numeric ? "<td class=\"n\">\(text)</td>" : "<td>\(text)</td>" }

    static func header(_ columns: [String], numericFrom: Int) -> String {
        "<tr>" + columns.enumerated().map { $0.offset >= numericFrom ? "<th class=\"n\">\(esc($0.element))</th>" : "<th>\(esc($0.element))</th>" }.joined() + "</tr>"
    }

    static func interval(_ v: JSONValue?, percent asPercent: Bool = true, digits: Int = 4) -> String {
        guard let (lo, hi) = pair(v) else { return "—" }
        return asPercent ? "[\(percent(lo, signed: true)), \(percent(hi, signed: true))]"
                         : "[\(TextReport.format(.double(lo), digits: digits)), \(TextReport.format(.double(hi), digits: digits))]"
    }

    /// One row of a comparison: absolute difference, lift [interval], p, adjusted p (and the
    /// always-valid ones), the star; the row is marked when significant.
    static func comparisonCells(_ c: JSONValue, _ roles: Roles) -> (cells: String, rowClass: String) {
        var cells = cell(TextReport.format(c["absolute_diff"], digits: 4)) + cell(percent(num(c["relative_lift"]), signed: true))
            + cell(interval(c["relative_ci"])) + cell(TextReport.format(c["p_value"], digits: 3)) + cell(TextReport.format(c["adjusted_p_value"], digits: 3))
        if roles.sequential != nil {
            cells += cell(interval(c["sequential"]?["relative_ci"])) + cell(TextReport.format(c["sequential"]?["adjusted_p_value"], digits: 3))
        }
        let sig = roles.significant(c)
        cells += "<td class=\"mark\">\(sig ? "*" : "")</td>"
        let direction = (num(c["absolute_diff"]) ?? 0) < 0 ? "down" : "up"
        return (cells, sig ? "sig \(direction)" : "")
    }

    static func comparisonColumns(_ roles: Roles) -> [String] {
        ["abs diff", "lift", "lift interval", "p", "adj p"] + (roles.sequential != nil ? ["always-valid interval", "adj always-valid p"] : []) + [""]
    }

    static func comparisonsTable(_ doc: JSONValue, _ roles: Roles) -> String {
        guard case .array(let comparisons)? = doc["comparisons"] else { return "<p class=\"empty\">The report has no comparisons.</p>\n" }
        let overall = comparisons.filter { $0["segment"] == .null }
        guard !overall.isEmpty else { return "<p class=\"empty\">No comparison with control.</p>\n" }
        var metrics: [String] = []
        for c in overall { if let m = TextReport.string(c["metric"]), !metrics.contains(m) { metrics.append(m) } }
        var out = "<p class=\"note\">\(esc(roles.legend)).</p><table>" + header(["metric", "variant"] + comparisonColumns(roles), numericFrom: 2)
        for metric in roles.ordered(metrics) {
            for c in overall where TextReport.string(c["metric"]) == metric {
                let (cells, rowClass) = comparisonCells(c, roles)
                let role = roles.role(metric).map { " <span class=\"note\">(\($0))</span>" } ?? ""
                out += "<tr class=\"\(rowClass)\"><td>\(esc(metric))\(role)</td><td>\(esc(TextReport.string(c["variant"]) ?? ""))</td>\(cells)</tr>"
            }
        }
        return out + "</table>\n"
    }

    static let countKeys = ["users", "impressions", "clicks", "carts", "purchases", "revenue", "orders", "converting_users", "order_revenue"]

    static func countCells(_ v: JSONValue?) -> String {
        countKeys.map { key in
            if case .double(let d)? = v?[key] { return cell(String(format: "%.2f", d)) }
            return cell(TextReport.format(v?[key]))
        }.joined()
    }

    static func countsTable(_ doc: JSONValue) -> String {
        let variants = members(doc["variants"])
        guard !variants.isEmpty else { return "<p class=\"empty\">No variant has analysed users.</p>\n" }
        var out = "<table>" + header(["variant"] + countKeys.map { $0.replacingOccurrences(of: "_", with: " ") }, numericFrom: 1)
        for (name, v) in variants { out += "<tr><td>\(esc(name))</td>\(countCells(v))</tr>" }
        return out + "</table>\n"
    }

    static func metricsTable(_ doc: JSONValue) -> String {
        let variants = members(doc["variants"])
        guard let first = variants.first?.1 else { return "" }
        let level = num(doc["significance_level"]).map { String(format: "%.0f %%", (1 - $0) * 100) } ?? "95 %"
        var out = "<p class=\"note\">value [\(level) interval]; — where a metric or its interval is undefined.</p><table>"
            + header(["metric"] + variants.map(\.0), numericFrom: 1)
        for (metric, _) in members(first["metrics"]) {
            out += "<tr><td>\(esc(metric))</td>"
            for (_, v) in variants {
                let m = v["metrics"]?[metric]
                out += cell(TextReport.format(m?["value"], digits: 4) + " " + interval(m?["ci"], percent: false))
            }
            out += "</tr>"
        }
        return out + "</table>\n"
    }

    static func dataQualityTable(_ doc: JSONValue) -> String {
        let dq = members(doc["data_quality"])
        guard !dq.isEmpty else { return "" }
        var out = "<table>" + header(["check", "count"], numericFrom: 1)
        var segmentSRM: [JSONValue] = []
        for (k, v) in dq {
            switch v {
            case .object(let inner) where k == "quarantined":
                let total = inner.reduce(0) { $0 + Int(num($1.1) ?? 0) }
                out += "<tr\(total > 0 ? " class=\"flag\"" : "")><td>quarantined lines</td>\(cell(String(total)))</tr>"
                for (reason, n) in inner where (num(n) ?? 0) > 0 { out += "<tr><td>&nbsp;&nbsp;\(esc(reason))</td>\(cell(TextReport.format(n)))</tr>" }
            case .object where k == "srm":
                let flag = v["flag"] == .bool(true)
                out += "<tr\(flag ? " class=\"flag\"" : "")><td>sample-ratio mismatch p-value\(flag ? " (mismatch)" : "")</td>\(cell(TextReport.format(v["p_value"], digits: 4)))</tr>"
            case .array(let list) where k == "segment_srm":
                segmentSRM = list
            default:
                out += "<tr><td>\(esc(k.replacingOccurrences(of: "_", with: " ")))</td>\(cell(TextReport.format(v)))</tr>"
            }
        }
        out += "</table>\n"
        if !segmentSRM.isEmpty {
            let flagged = segmentSRM.filter { $0["flag"] == .bool(true) }.count
            out += "<details><summary>Sample-ratio mismatch per segment (\(segmentSRM.count) segments, \(flagged) flagged)</summary><table>"
                + header(["segment", "p-value"], numericFrom: 1)
            for s in segmentSRM {
                let flag = s["flag"] == .bool(true)
                out += "<tr\(flag ? " class=\"flag\"" : "")><td>\(esc(TextReport.string(s["segment"]) ?? ""))</td>\(cell(TextReport.format(s["p_value"], digits: 4)))</tr>"
            }
            out += "</table></details>\n"
        }
        return out
    }

    /// One collapsible table per segment dimension: per value and variant the counts, the funnel
    /// rates and the primary metric, with the primary metric's comparison with control.
    static func segmentTables(_ doc: JSONValue, _ roles: Roles) -> String {
        let dimensions = members(doc["segments"])
        guard !dimensions.isEmpty else { return "<p class=\"empty\">No segment dimensions in the events' context.</p>\n" }
        var comparisons: [String: JSONValue] = [:]
        if case .array(let all)? = doc["comparisons"] {
            for c in all where TextReport.string(c["metric"]) == roles.primary {
                if let s = TextReport.string(c["segment"]), let v = TextReport.string(c["variant"]) { comparisons["\(s)\u{0}\(v)"] = c }
            }
        }
        let primary = roles.primary ?? "purchases_per_user"
        var out = "<p class=\"note\">Open a dimension to see its table. The lift columns compare each variant's \(esc(primary)) with the control's within the segment; \(esc(roles.legend)) (segments are corrected as one family).</p>\n"
        let sequential = roles.sequential != nil
        let columns = ["value", "variant", "users", "clicks", "purchases", "ctr", "post-click cvr", "ctcvr", primary, "lift",
                       sequential ? "always-valid interval" : "lift interval", sequential ? "adj always-valid p" : "adj p", ""]
        for (dimension, values) in dimensions {
            let valueList = members(values)
            var rows = ""
            var significant = 0
            for (value, variants) in valueList {
                for (variant, v) in members(variants) {
                    rows += "<tr"
                    var tail = String(repeating: cell(""), count: 4)
                    if let c = comparisons["\(dimension)=\(value)\u{0}\(variant)"] {
                        let sig = roles.significant(c)
                        let source = sequential ? c["sequential"] : c
                        tail = cell(percent(num(c["relative_lift"]), signed: true)) + cell(interval(source?["relative_ci"]))
                            + cell(TextReport.format(source?["adjusted_p_value"], digits: 3)) + "<td class=\"mark\">\(sig ? "*" : "")</td>"
                        if sig { rows += " class=\"sig \((num(c["absolute_diff"]) ?? 0) < 0 ? "down" : "up")\""; significant += 1 }
                    }
                    rows += "><td>\(esc(value))</td><td>\(esc(variant))</td>"
                    for key in ["users", "clicks", "purchases"] { rows += cell(TextReport.format(v[key])) }
                    for metric in ["ctr", "post_click_cvr", "ctcvr", primary] { rows += cell(TextReport.format(v["metrics"]?[metric]?["value"], digits: 4)) }
                    rows += tail + "</tr>"
                }
            }
            out += "<details data-dimension=\"\(esc(dimension))\"><summary>\(esc(dimension)) — \(valueList.count) values, \(significant) significant comparison\(significant == 1 ? "" : "s")</summary><table>"
                + header(columns, numericFrom: 2) + rows + "</table></details>\n"
        }
        return out
    }

    static func positionBiasTables(_ doc: JSONValue) -> String {
        guard let pb = doc["position_bias"], case .object = pb else { return "" }
        var out = "<h2>Position bias (\(esc(TextReport.string(pb["method"]) ?? ""))) and debiased CTR</h2>\n<table>"
            + header(["position", "propensity", "interval", "naive ratio"], numericFrom: 1)
        for (p, v) in members(pb["positions"]) {
            out += "<tr><td>\(esc(p))</td>\(cell(TextReport.format(v["propensity"], digits: 3)))\(cell(interval(v["ci"], percent: false, digits: 3)))\(cell(TextReport.format(v["naive"], digits: 3)))</tr>"
        }
        out += "</table>\n<table>" + header(["variant", "impressions", "clicks", "ctr", "ips ctr"], numericFrom: 1)
        for (name, v) in members(pb["variants"]) {
            out += "<tr><td>\(esc(name))</td>\(cell(TextReport.format(v["impressions"])))\(cell(TextReport.format(v["clicks"])))\(cell(TextReport.format(v["ctr"], digits: 4)))\(cell(TextReport.format(v["ips_ctr"], digits: 4)))</tr>"
        }
        return out + "</table>\n"
    }

    static func cupedTable(_ doc: JSONValue) -> String {
        guard doc["cuped"]?["enabled"] == .bool(true), case .array(let rows)? = doc["cuped"]?["metrics"], let first = rows.first else { return "" }
        let keys = members(first).map(\.0)
        var out = "<h2>CUPED</h2>\n<p class=\"note\">\(esc(TextReport.string(doc["cuped"]?["scope"]) ?? ""))</p><table>" + header(keys.map { $0.replacingOccurrences(of: "_", with: " ") }, numericFrom: 2)
        for r in rows {
            out += "<tr>" + keys.enumerated().map { k, key in
                let v = r[key]
                if case .array = v { return cell(interval(v, percent: false)) }
                return k < 2 ? cell(esc(TextReport.format(v, digits: 4)), numeric: false) : cell(TextReport.format(v, digits: 4))
            }.joined() + "</tr>"
        }
        return out + "</table>\n"
    }
}
