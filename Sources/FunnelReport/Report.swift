import FunnelBase
import FunnelAnalysis
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelStats

/// Builds the report document (DESIGN.md §5) from the analysis and the diagnosis.
public struct ReportBuilder {
    public let analysis: Analysis
    public let findings: [Finding]

    public init(analysis: Analysis, findings: [Finding] = []) {
        self.analysis = analysis
        self.findings = findings
    }

    /// Counting rules, statistics and (with `inputs`) the diagnosis, in one call.
    public init(summary: ExperimentSummary, config: FunnelConfig, diagnosis inputs: DiagnosisInputs? = nil) {
        let analysis = Analysis(summary: summary, config: config)
        self.analysis = analysis
        findings = inputs.map { Diagnosis.findings(analysis, $0) } ?? []
    }

    var config: FunnelConfig { analysis.config }

    func countsJSON(_ users: Moments) -> [(String, JSONValue)] {
        let c = GroupCounts(users)
        let metrics = Metrics.estimates(users, alpha: config.significanceLevel).map { name, e in
            (name.rawValue, JSONValue.object([("value", .number(e.value)), ("ci", .interval(e.ci))]))
        }
        return [
            ("users", .int(c.users)), ("impressions", .int(c.impressions)), ("clicks", .int(c.clicks)),
            ("carts", .int(c.carts)), ("purchases", .int(c.purchases)), ("revenue", .double(c.revenue)),
            ("orders", .int(c.orders)), ("converting_users", .int(c.convertingUsers)), ("order_revenue", .double(c.orderRevenue)),
            ("metrics", .object(metrics)),
        ]
    }

    /// The report as a JSON document.
    public func json() -> JSONValue {
        let a = analysis
        let variants: [(String, JSONValue)] = a.variants.indices.map { v in (a.variants[v], .object(countsJSON(analysis.perVariant[v]))) }

        let comparisons: [JSONValue] = analysis.comparisons.map { c in
            var members: [(String, JSONValue)] = [
                ("metric", .string(c.metric.rawValue)), ("variant", .string(c.variant)), ("segment", c.segment.map(JSONValue.string) ?? .null),
                ("absolute_diff", .number(c.difference.absoluteDiff)), ("relative_lift", .number(c.difference.relativeLift)),
                ("ci", .interval(c.difference.ci)), ("relative_ci", .interval(c.difference.relativeCI)),
                ("p_value", .number(c.difference.pValue)), ("adjusted_p_value", .number(c.adjustedP)), ("significant", .bool(c.significant)),
            ]
            // Always-valid inference, when on: its intervals, p-value and significance beside the fixed-horizon ones.
            if let s = c.sequential {
                members.append(("sequential", .object([
                    ("method", .string(s.method.rawValue)), ("ci", .interval(s.ci)), ("relative_ci", .interval(s.relativeCI)),
                    ("p_value", .number(s.pValue)), ("adjusted_p_value", .number(s.adjustedP)), ("significant", .bool(s.significant)),
                ])))
            }
            return .object(members)
        }

        let dq = a.dataQuality
        let quarantined: [(String, JSONValue)] = QuarantineReason.allCases.map { ($0.rawValue, .int(dq.quarantined[$0] ?? 0)) }
        let segmentSRM: [JSONValue] = analysis.segmentSRM.map {
            .object([("segment", .string("\($0.dimension)=\($0.value)")), ("p_value", .number($0.p)), ("flag", .bool($0.flag))])
        }
        let dataQuality: JSONValue = .object([
            ("events_read", .int(dq.eventsRead)), ("quarantined", .object(quarantined)),
            ("duplicate_events", .int(dq.duplicateEvents)), ("bot_users", .int(dq.botUsers)),
            ("non_viewable_impressions", .int(dq.nonViewableImpressions)), ("collapsed_impressions", .int(dq.collapsedImpressions)),
            ("orphan_clicks", .int(dq.orphanClicks)), ("late_clicks", .int(dq.lateClicks)),
            ("unattributed_conversions", .int(dq.unattributedConversions)), ("leaked_users", .int(dq.leakedUsers)),
            ("variant_mismatches", .int(dq.variantMismatches)), ("non_viewable_clicks", .int(dq.nonViewableClicks)),
            ("duplicate_clicks", .int(dq.duplicateClicks)), ("exposed_users", .int(dq.exposedUsers)),
            ("srm", .object([("p_value", .number(analysis.srm.p)), ("flag", .bool(analysis.srm.flag))])),
            ("segment_srm", .array(segmentSRM)),
        ])

        var segments: [(String, JSONValue)] = []
        var dimension: String? = nil
        var values: [(String, JSONValue)] = []
        for s in analysis.segments {
            if s.dimension != dimension {
                if let dimension { segments.append((dimension, .object(values))) }
                dimension = s.dimension
                values = []
            }
            let byVariant: [(String, JSONValue)] = a.variants.indices.compactMap { v in
                s.groups[v].count == 0 ? nil : (a.variants[v], .object(countsJSON(s.groups[v])))
            }
            values.append((s.value, .object(byVariant)))
        }
        if let dimension { segments.append((dimension, .object(values))) }

        let positions: [(String, JSONValue)] = a.variants.indices.map { v in
            let members: [(String, JSONValue)] = a.positions[v].keys.sorted().map { p in
                let c = a.positions[v][p]!
                let ctr: JSONValue = c.impressions > 0 ? .double(Double(c.clicks) / Double(c.impressions)) : .null
                return (String(p), .object([("impressions", .int(c.impressions)), ("clicks", .int(c.clicks)), ("ctr", ctr)]))
            }
            return (a.variants[v], .object(members))
        }

        let diagnosis: JSONValue = .object([
            ("verdict", .string(analysis.verdict.rawValue)),
            ("verdict_reasons", .array(analysis.verdictReasons.map(JSONValue.string))),
            ("verdict_rule", .string("inconclusive when SRM is flagged or leaked users exceed 5 % of exposed users; else do_not_ship when the primary metric or a guardrail is significantly worse in any treatment; else ship when the primary metric is significantly better; else inconclusive")),
            ("primary_metric", .string(config.primaryMetric.rawValue)),
            ("guardrail_metrics", .array(config.guardrailMetrics.map { .string($0.rawValue) })),
            ("findings", .array(findings.map(\.json))),
        ])

        var head: [(String, JSONValue)] = [
            ("experiment", .string(a.summary.experiment)),
            ("control", .string(config.control)),
            ("significance_level", .double(config.significanceLevel)),
            ("correction", .string(config.correction.rawValue)),
        ]
        if let asOf = config.asOf { head.append(("as_of", .string(Timestamp.rfc3339(asOf)))) }
        if config.sequential != .none {
            head.append(("sequential", .object([("method", .string(config.sequential.rawValue)),
                                                ("tuning", config.sequential == .confidenceSequence ? .double(config.sequentialTuning) : .null)])))
        }
        return .object(head + [
            ("variants", .object(variants)),
            ("comparisons", .array(comparisons)),
            ("data_quality", dataQuality),
            ("segments", .object(segments)),
            ("positions", .object(positions)),
            ("diagnosis", diagnosis),
            ("cuped", .object([
                ("enabled", .bool(config.cuped)), ("lookback_days", .double(config.cupedLookbackDays)),
                ("scope", .string("overall comparisons; per-variant metric values and segment comparisons are unadjusted")),
                ("metrics", .array(analysis.cuped.map { r in
                    .object([("metric", .string(r.metric.rawValue)), ("variant", .string(r.variant)), ("theta", .double(r.theta)),
                             ("variance_reduction", .double(r.varianceReduction)), ("users_with_pre_period_data", .int(r.usersWithPreData))])
                })),
            ])),
        ])
    }
}
