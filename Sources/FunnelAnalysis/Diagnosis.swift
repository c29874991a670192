import Foundation
import FunnelBase
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelStats

/// One finding of the diagnosis: a kind, a severity, a sentence and the numbers behind it.
public struct Finding: Sendable {
    public enum Severity: String, Sendable { case critical, warning, info }
    public var kind: String
    public var severity: Severity
    public var message: String
    public var numbers: [(String, JSONValue)]

    var rank: Int { severity == .critical ? 0 : severity == .warning ? 1 : 2 }

    public var json: JSONValue {
        .object([("kind", .string(kind)), ("severity", .string(severity.rawValue)), ("message", .string(message))] + numbers)
    }
}

/// Everything the diagnosis needs beyond the analysis.
public struct DiagnosisInputs: Sendable {
    /// Item id → cohort name, from `--items`; nil: deciles of pooled post-click CVR.
    public var cohorts: [String: String]?
    /// Size of the catalog for coverage (the items file's); nil: the distinct items of the log.
    public var catalogSize: Int?

    public init(cohorts: [String: String]? = nil, catalogSize: Int? = nil) {
        self.cohorts = cohorts
        self.catalogSize = catalogSize
    }
}

/// Explains a change (DESIGN.md §5 "diagnosis"): which funnel stage moved, mix versus rate over item
/// cohorts, diversity and coverage, disagreeing segments, position effects, attribution-window
/// sensitivity, right-censoring and threats to validity.
public enum Diagnosis {
    public static func findings(_ a: Analysis, _ inputs: DiagnosisInputs) -> [Finding] {
        var out: [Finding] = []
        out += threats(a)
        guard let control = a.controlIndex else {
            out.append(Finding(kind: "no_control", severity: .critical,
                               message: "control variant '\(a.config.control)' has no analysed users; set ab_testing.control to one of: \(a.variants.joined(separator: ", "))",
                               numbers: []))
            return out
        }
        for t in a.variants.indices where t != control {
            out += stageDecomposition(a, control: control, treatment: t)
            if let f = mixVersusRate(a, control: control, treatment: t, cohorts: inputs.cohorts) { out.append(f) }
            if let f = positionEffects(a, control: control, treatment: t) { out.append(f) }
        }
        out.append(diversity(a, catalogSize: inputs.catalogSize ?? a.summary.itemsSeen.count))
        out += simpsons(a)
        out += windowSensitivity(a)
        out += rightCensoring(a, control: control)
        return out.enumerated().sorted { ($0.element.rank, $0.offset) < ($1.element.rank, $1.offset) }.map(\.element)
    }

    // MARK: stage decomposition

    /// Δlog(ctcvr) = Δlog(ctr) + Δlog(post_click_cvr), each term with a delta-method interval
    /// (Var Δlog R = V_t/R_t² + V_c/R_c²), and the cart step.
    static func stageDecomposition(_ a: Analysis, control c: Int, treatment t: Int) -> [Finding] {
        let z = Distributions.normalQuantile(1 - a.alpha / 2)
        func logDiff(_ m: MetricName) -> (value: Double, ci: (Double, Double)?)? {
            let ec = Metrics.estimate(m, a.perVariant[c], alpha: a.alpha), et = Metrics.estimate(m, a.perVariant[t], alpha: a.alpha)
            guard let rc = ec.value, let rt = et.value, rc > 0, rt > 0 else { return nil }
            let d = log(rt / rc)
            guard let vc = ec.variance, let vt = et.variance else { return (d, nil) }
            let se = (vt / (rt * rt) + vc / (rc * rc)).squareRoot()
            return (d, (d - z * se, d + z * se))
        }
        guard let total = logDiff(.ctcvr), let ctr = logDiff(.ctr), let cvr = logDiff(.postClickCVR) else { return [] }
        let cart = logDiff(.cartRate)
        func moved(_ x: (value: Double, ci: (Double, Double)?)) -> Bool {
            guard let ci = x.ci else { return false }
            return ci.0 > 0 || ci.1 < 0
        }
        let stage: String
        if moved(ctr) && moved(cvr) {
            stage = abs(cvr.value) >= abs(ctr.value) ? "post_click" : "click"
        } else if moved(cvr) {
            stage = "post_click"
        } else if moved(ctr) {
            stage = "click"
        } else {
            stage = "none"
        }
        let name = a.variants[t]
        func pct(_ d: Double) -> String { signedPercent(exp(d) - 1) }
        var message = "\(name): purchases per impression (ctcvr) \(pct(total.value)) = click-through \(pct(ctr.value)) × post-click conversion \(pct(cvr.value))"
        switch stage {
        case "post_click": message += "; the post-click stage moved most"
        case "click": message += "; the click stage moved most"
        default: message += "; neither stage moved significantly"
        }
        if moved(ctr) && moved(cvr) && (ctr.value > 0) != (cvr.value > 0) {
            message += " — the stages moved in opposite directions"
        }
        let severity: Finding.Severity = moved(total) && total.value < 0 ? .critical : (stage == "none" ? .info : .warning)
        var numbers: [(String, JSONValue)] = [
            ("variant", .string(name)), ("stage", .string(stage)),
            ("delta_log_ctcvr", .number(total.value)), ("delta_log_ctcvr_ci", .interval(total.ci)),
            ("delta_log_ctr", .number(ctr.value)), ("delta_log_ctr_ci", .interval(ctr.ci)),
            ("delta_log_post_click_cvr", .number(cvr.value)), ("delta_log_post_click_cvr_ci", .interval(cvr.ci)),
        ]
        if let cart {
            numbers += [("delta_log_cart_rate", .number(cart.value)), ("delta_log_cart_rate_ci", .interval(cart.ci))]
        }
        return [Finding(kind: "stage_decomposition", severity: severity, message: message, numbers: numbers)]
    }

    // MARK: mix versus rate

    /// Cohort of each clicked item: the given mapping, else deciles (by pooled clicks) of items
    /// sorted by pooled post-click conversion rate.
    static func cohortsOf(_ a: Analysis, given: [String: String]?) -> [String: String] {
        if let given { return given }
        var pooled: [String: ItemCounts] = [:]
        for v in a.items {
            for (item, c) in v {
                pooled[item, default: ItemCounts()].clicks += c.clicks
                pooled[item, default: ItemCounts()].purchases += c.purchases
            }
        }
        let clicked = pooled.filter { $0.value.clicks > 0 }.map { ($0.key, $0.value) }.sorted {
            let r0 = Double($0.1.purchases) / Double($0.1.clicks), r1 = Double($1.1.purchases) / Double($1.1.clicks)
            return r0 != r1 ? r0 < r1 : $0.0 < $1.0
        }
        let totalClicks = clicked.reduce(0) { $0 + $1.1.clicks }
        var out: [String: String] = [:]
        var running = 0
        for (item, c) in clicked {
            let decile = min(9, running * 10 / max(totalClicks, 1))
            out[item] = "cvr_decile_\(decile + 1)"
            running += c.clicks
        }
        return out
    }

    /// Shapley split of the change in post-click conversion into a mix term
    /// Σ (s_t − s_c)(r_t + r_c)/2 and a rate term Σ (r_t − r_c)(s_t + s_c)/2 over cohorts, where s is a
    /// cohort's share of clicks and r its post-click conversion rate; the two add up to the change.
    static func mixVersusRate(_ a: Analysis, control c: Int, treatment t: Int, cohorts given: [String: String]?) -> Finding? {
        let cohortOf = cohortsOf(a, given: given)
        var byCohort: [String: (ItemCounts, ItemCounts)] = [:]
        for (v, slot) in [(c, 0), (t, 1)] {
            for (item, counts) in a.items[v] {
                guard let cohort = cohortOf[item] ?? (given != nil ? "unlisted" : nil) else { continue }
                var pair = byCohort[cohort] ?? (ItemCounts(), ItemCounts())
                if slot == 0 { pair.0.clicks += counts.clicks; pair.0.purchases += counts.purchases }
                else { pair.1.clicks += counts.clicks; pair.1.purchases += counts.purchases }
                byCohort[cohort] = pair
            }
        }
        let clicksC = byCohort.values.reduce(0) { $0 + $1.0.clicks }, clicksT = byCohort.values.reduce(0) { $0 + $1.1.clicks }
        guard clicksC > 0, clicksT > 0, byCohort.count >= 2 else { return nil }
        var mix = 0.0, rate = 0.0
        var rows: [JSONValue] = []
        for name in byCohort.keys.sorted(by: cohortOrder) {
            let (cc, ct) = byCohort[name]!
            let pooledRate = cc.clicks + ct.clicks > 0 ? Double(cc.purchases + ct.purchases) / Double(cc.clicks + ct.clicks) : 0
            let sc = Double(cc.clicks) / Double(clicksC), st = Double(ct.clicks) / Double(clicksT)
            let rc = cc.clicks > 0 ? Double(cc.purchases) / Double(cc.clicks) : pooledRate
            let rt = ct.clicks > 0 ? Double(ct.purchases) / Double(ct.clicks) : pooledRate
            mix += (st - sc) * (rt + rc) / 2
            rate += (rt - rc) * (st + sc) / 2
            rows.append(.object([("cohort", .string(name)), ("control_click_share", .double(sc)), ("treatment_click_share", .double(st)),
                                 ("control_post_click_cvr", .double(rc)), ("treatment_post_click_cvr", .double(rt))]))
        }
        let total = mix + rate
        let mixShare = total != 0 ? mix / total : 0
        let name = a.variants[t]
        let source = given != nil ? "item cohorts from --items" : "deciles of pooled post-click conversion"
        let message: String
        if total == 0 {
            message = "\(name): post-click conversion unchanged across \(byCohort.count) cohorts (\(source))"
        } else {
            let direction = mix < 0 ? "toward cohorts that convert worse" : "toward cohorts that convert better"
            message = "\(name): post-click conversion \(String(format: "%+.4f", total)): \(String(format: "%+.4f", mix)) (\(String(format: "%.0f", mixShare * 100)) %) from clicks moving \(direction) (mix), \(String(format: "%+.4f", rate)) from rates within cohorts (\(source))"
        }
        let severity: Finding.Severity = mix < 0 && abs(mixShare) >= 0.5 ? .warning : .info
        return Finding(kind: "mix_vs_rate", severity: severity, message: message, numbers: [
            ("variant", .string(name)), ("cohort_source", .string(given != nil ? "items_file" : "post_click_cvr_deciles")),
            ("total_change", .double(total)), ("mix", .double(mix)), ("rate", .double(rate)), ("mix_share", .double(mixShare)),
            ("cohorts", .array(rows)),
        ])
    }

    static func cohortOrder(_ a: String, _ b: String) -> Bool {
        let na = Int(a.split(separator: "_").last ?? ""), nb = Int(b.split(separator: "_").last ?? "")
        if let na, let nb, a.hasPrefix("cvr_decile_"), b.hasPrefix("cvr_decile_") { return na < nb }
        return a < b
    }

    // MARK: diversity and coverage

    static func diversity(_ a: Analysis, catalogSize: Int) -> Finding {
        var union = Set<String>()
        for v in a.items { for (item, c) in v where c.impressions > 0 { union.insert(item) } }
        var rows: [(String, JSONValue)] = []
        var parts: [String] = []
        for (v, name) in a.variants.enumerated() {
            let items = a.items[v]
            let shown = items.values.filter { $0.impressions > 0 }.count
            let clicked = items.values.filter { $0.clicks > 0 }.count
            var counts = union.map { Double(items[$0]?.impressions ?? 0) }.sorted()
            let total = counts.reduce(0, +)
            // Gini over the items shown by any variant: Σ (2i − n − 1)·x_i / (n·Σx), x sorted ascending.
            var gini: Double? = nil
            if total > 0 && counts.count > 1 {
                var acc = 0.0
                for (i, x) in counts.enumerated() { acc += Double(2 * (i + 1) - counts.count - 1) * x }
                gini = acc / (Double(counts.count) * total)
            }
            let top = max(1, Int((Double(union.count) * 0.01).rounded(.up)))
            counts.reverse()
            let topShare = total > 0 ? counts.prefix(top).reduce(0, +) / total : nil
            let coverage = catalogSize > 0 ? Double(shown) / Double(catalogSize) : nil
            rows.append((name, .object([("items_shown", .int(shown)), ("items_clicked", .int(clicked)), ("catalog_coverage", .number(coverage)),
                                        ("gini_impressions", .number(gini)), ("top1pct_impression_share", .number(topShare))])))
            parts.append("\(name) showed \(shown) items (coverage \(coverage.map { percent($0) } ?? "n/a"), Gini \(fmt(gini)), top 1 % of items \(topShare.map { percent($0) } ?? "n/a") of impressions)")
        }
        return Finding(kind: "diversity_coverage", severity: .info, message: parts.joined(separator: "; "),
                       numbers: [("catalog_size", .int(catalogSize)), ("variants", .object(rows))])
    }

    // MARK: segments that disagree

    static func simpsons(_ a: Analysis) -> [Finding] {
        var out: [Finding] = []
        let overall = a.comparisons.filter { $0.segment == nil }
        for o in overall {
            guard let total = o.difference.absoluteDiff, total != 0 else { continue }
            let opposite = a.comparisons.filter {
                $0.segment != nil && $0.metric == o.metric && $0.variant == o.variant
                    && ($0.difference.absoluteDiff ?? 0) != 0 && (($0.difference.absoluteDiff ?? 0) > 0) != (total > 0)
            }
            guard !opposite.isEmpty else { continue }
            let significant = opposite.filter(\.significant)
            if significant.isEmpty && o.metric != a.config.primaryMetric { continue }
            let list = opposite.map { c in
                JSONValue.object([("segment", .string(c.segment!)), ("absolute_diff", .number(c.difference.absoluteDiff)),
                                  ("relative_lift", .number(c.difference.relativeLift)), ("p_value", .number(c.difference.pValue)),
                                  ("adjusted_p_value", .number(c.adjustedP)), ("significant", .bool(c.significant))])
            }
            let names = opposite.prefix(4).map { "\($0.segment!) (\(signedPercent($0.difference.relativeLift))\($0.significant ? ", significant" : ""))" }
            out.append(Finding(kind: "segment_disagreement", severity: significant.isEmpty ? .info : .warning,
                               message: "\(o.metric.rawValue) in \(o.variant) moves \(total > 0 ? "up" : "down") overall (\(signedPercent(o.difference.relativeLift))) but the other way in \(opposite.count) segment(s): \(names.joined(separator: ", "))\(significant.isEmpty ? "; none significant after correction" : "")",
                               numbers: [("metric", .string(o.metric.rawValue)), ("variant", .string(o.variant)),
                                         ("overall_absolute_diff", .double(total)), ("segments", .array(list))]))
        }
        return out
    }

    // MARK: positions

    static func positionEffects(_ a: Analysis, control c: Int, treatment t: Int) -> Finding? {
        let positions = Set(a.positions[c].keys).union(a.positions[t].keys).sorted()
        guard positions.count >= 2 else { return nil }
        let clicksC = positions.map { Double(a.positions[c][$0]?.clicks ?? 0) }
        let clicksT = positions.map { Double(a.positions[t][$0]?.clicks ?? 0) }
        let totalC = clicksC.reduce(0, +), totalT = clicksT.reduce(0, +)
        guard totalC > 0, totalT > 0 else { return nil }
        let test = Estimators.chiSquareIndependence([clicksC, clicksT])
        let rows: [JSONValue] = positions.enumerated().map { k, p in
            let ic = a.positions[c][p]?.impressions ?? 0, it = a.positions[t][p]?.impressions ?? 0
            return .object([("position", .int(Int(p))),
                            ("control_ctr", ic > 0 ? .double(clicksC[k] / Double(ic)) : .null),
                            ("treatment_ctr", it > 0 ? .double(clicksT[k] / Double(it)) : .null),
                            ("control_click_share", .double(clicksC[k] / totalC)), ("treatment_click_share", .double(clicksT[k] / totalT))])
        }
        let topC = clicksC[0] / totalC, topT = clicksT[0] / totalT
        let moved = (test?.p ?? 1) < a.alpha
        let name = a.variants[t]
        let message = "\(name): position \(positions[0]) takes \(percent(topT)) of clicks vs \(percent(topC)) in control; the click distribution over positions \(moved ? "changed" : "did not change significantly") (χ² p = \(fmt(test?.p)); clicks treated as independent, so read as descriptive)"
        return Finding(kind: "position_effects", severity: moved ? .warning : .info, message: message, numbers: [
            ("variant", .string(name)), ("chi_square", .number(test?.stat)), ("df", test.map { .int($0.df) } ?? .null),
            ("p_value", .number(test?.p)), ("positions", .array(rows)),
        ])
    }

    // MARK: attribution window and censoring

    /// The conclusions under each of the summary's sensitivity windows (`ExperimentSummary.windowHours`),
    /// from the users' moments under that window; nothing when the summary holds none.
    static func windowSensitivity(_ a: Analysis) -> [Finding] {
        guard !a.summary.windowHours.isEmpty else { return [] }
        let metrics: [MetricName] = [.ctcvr, .postClickCVR, a.config.primaryMetric]
        /// (metric/variant, up|down|flat) in the order of the comparisons.
        func conclusion(_ x: Analysis) -> [(String, String)] {
            var out: [(String, String)] = []
            for c in x.comparisons where c.segment == nil && metrics.contains(c.metric) {
                let sign = (c.difference.absoluteDiff ?? 0) > 0 ? "up" : "down"
                let key = "\(c.metric.rawValue)/\(c.variant)"
                if !out.contains(where: { $0.0 == key }) { out.append((key, c.significant ? sign : "flat")) }
            }
            return out
        }
        let base = Dictionary(conclusion(a), uniquingKeysWith: { first, _ in first })
        var rows: [JSONValue] = []
        var changed: [String] = []
        for (i, w) in a.summary.windowHours.enumerated() {
            let x: Analysis
            if w == a.config.conversionWindowHours { x = a } else {
                var c = a.config
                c.conversionWindowHours = w
                x = Analysis(summary: a.summary.underWindow(i), config: c)
            }
            let c = conclusion(x)
            var entries: [(String, JSONValue)] = [("conversion_window_hours", .double(w))]
            for comp in x.comparisons where comp.segment == nil && metrics.contains(comp.metric) {
                entries.append(("\(comp.metric.rawValue):\(comp.variant)", .object([
                    ("relative_lift", .number(comp.difference.relativeLift)), ("adjusted_p_value", .number(comp.adjustedP)),
                    ("significant", .bool(comp.significant))])))
            }
            rows.append(.object(entries))
            for (k, v) in c where base[k] != v { changed.append("\(k) is \(v) at \(Int(w)) h (\(base[k] ?? "?") at \(fmtHours(a.config.conversionWindowHours)))") }
        }
        let message = changed.isEmpty
            ? "conclusions for ctcvr, post-click conversion and the primary metric hold for conversion windows of 1 h, 24 h, 72 h and 7 d"
            : "the conclusion depends on the conversion window: " + changed.joined(separator: "; ")
        return [Finding(kind: "attribution_window", severity: changed.isEmpty ? .info : .warning, message: message,
                        numbers: [("windows", .array(rows)), ("changed", .bool(!changed.isEmpty))])]
    }

    static func fmtHours(_ h: Double) -> String { h == h.rounded() ? "\(Int(h)) h" : "\(h) h" }

    /// Users exposed less than one conversion window before the end of the data have not had the
    /// full window to convert: their share, and the primary comparison without them.
    ///
    /// The summary keeps the users' moments per minute of first exposure near the end of the data, so
    /// a user counts as censored when the minute of the first exposure is later than the minute of
    /// the cutoff (end of data − window): to the minute, not the millisecond.
    static func rightCensoring(_ a: Analysis, control: Int) -> [Finding] {
        guard a.summary.endOfData != Int64.min else { return [] }
        let window = FunnelConfig.millis(hours: a.config.conversionWindowHours)
        let cutoff = a.summary.endOfData - window
        let cutoffMinute = ExperimentSummary.minute(of: cutoff)
        var groups = a.perVariant.map { $0.prefix(Quantity.count) }
        var censored = 0
        for (v, name) in a.variants.enumerated() {
            for (minute, m) in a.summary.variants[name]!.tail where minute > cutoffMinute {
                groups[v].subtract(m)
                censored += m.count
            }
        }
        let users = a.perVariant.reduce(0) { $0 + $1.count }
        let share = users == 0 ? 0 : Double(censored) / Double(users)
        var rows: [JSONValue] = []
        var parts: [String] = []
        for t in a.variants.indices where t != control {
            let d = Analysis.difference(a.config.primaryMetric, control: groups[control], treatment: groups[t], alpha: a.alpha)
            rows.append(.object([("variant", .string(a.variants[t])), ("relative_lift", .number(d.relativeLift)),
                                 ("ci", .interval(d.ci)), ("p_value", .number(d.pValue))]))
            parts.append("\(a.variants[t]) \(signedPercent(d.relativeLift)) (p = \(fmt(d.pValue)))")
        }
        let message = "\(percent(share)) of users were exposed less than \(fmtHours(a.config.conversionWindowHours)) before the end of the data; without them, \(a.config.primaryMetric.rawValue): \(parts.joined(separator: ", "))"
        return [Finding(kind: "right_censoring", severity: share > 0.2 ? .warning : .info, message: message, numbers: [
            ("censored_users", .int(censored)), ("censored_share", .double(share)),
            ("end_of_data", .string(Timestamp.rfc3339(a.summary.endOfData))), ("primary_without_censored", .array(rows)),
        ])]
    }

    // MARK: threats to validity

    static func threats(_ a: Analysis) -> [Finding] {
        let dq = a.dataQuality
        var out: [Finding] = []
        out.append(Finding(kind: "srm", severity: a.srm.flag ? .critical : .info,
                           message: a.srm.flag
                               ? "sample-ratio mismatch: user counts \(a.perVariant.map { String($0.count) }.joined(separator: " / ")) are unlikely under the expected split (p = \(fmt(a.srm.p))); find the cause before reading any metric"
                               : "user counts \(a.perVariant.map { String($0.count) }.joined(separator: " / ")) match the expected split (SRM p = \(fmt(a.srm.p)))",
                           numbers: [("p_value", .number(a.srm.p)), ("flag", .bool(a.srm.flag)),
                                     ("users", .object(a.variants.indices.map { (a.variants[$0], .int(a.perVariant[$0].count)) }))]))
        let flaggedSegments = a.segmentSRM.filter(\.flag)
        if !flaggedSegments.isEmpty {
            out.append(Finding(kind: "segment_srm", severity: .warning,
                               message: "sample-ratio mismatch inside \(flaggedSegments.count) segment(s): " + flaggedSegments.prefix(5).map { "\($0.dimension)=\($0.value) (p = \(fmt($0.p)))" }.joined(separator: ", "),
                               numbers: [("segments", .array(flaggedSegments.map { .object([("segment", .string("\($0.dimension)=\($0.value)")), ("p_value", .number($0.p))]) }))]))
        }
        func share(_ n: Int, _ d: Int) -> Double { d > 0 ? Double(n) / Double(d) : 0 }
        let totalClicks = a.perVariant.reduce(0) { $0 + Int($1.sum(Quantity.clicks.rawValue)) }
        let totalImpressions = a.perVariant.reduce(0) { $0 + Int($1.sum(Quantity.impressions.rawValue)) }
        let checks: [(String, Int, Int, String, Double, Double)] = [
            ("leakage", dq.leakedUsers, dq.exposedUsers, "of exposed users saw more than one variant", 0.01, 0.05),
            ("variant_mismatch", dq.variantMismatches, totalImpressions + dq.variantMismatches, "of impressions after exposure carried another variant", 0.01, 0.05),
            ("duplicates", dq.duplicateEvents, dq.eventsRead, "of lines were duplicate events", 0.01, 0.05),
            ("quarantine", dq.quarantined.values.reduce(0, +), dq.eventsRead, "of lines were quarantined", 0.01, 0.05),
            ("orphan_clicks", dq.orphanClicks, totalClicks + dq.orphanClicks, "of clicks named no impression of their user", 0.01, 0.05),
            ("bots", dq.botUsers, dq.exposedUsers + dq.botUsers, "of users were bots", 0.02, 0.10),
        ]
        for (kind, n, d, text, warn, critical) in checks where n > 0 {
            let s = share(n, d)
            let severity: Finding.Severity = s > critical ? .critical : (s > warn ? .warning : .info)
            out.append(Finding(kind: kind, severity: severity, message: "\(n) (\(percent(s))) \(text)",
                               numbers: [("count", .int(n)), ("share", .double(s))]))
        }
        return out
    }
}
