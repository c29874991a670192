import Foundation
import FunnelBase
import FunnelAnalysis
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelStats

/// `funnel report --daily`: the experiment as a team watching it would have seen it, one row per
/// day. Day d's row is the report as of the end of that UTC day (`FunnelConfig.asOf`): every
/// counting rule applied to the events up to then. It gives the users per variant, and for the
/// primary metric the lift with its fixed-horizon and always-valid intervals and p-values, and the
/// verdict so far. The log is read once and held in memory, as for the position-bias section.
/// With the mSPRT, the always-valid p-value of the path is the running minimum of the days' values.
public struct DailyPath: Sendable {
    public struct Row: Sendable {
        public var day: String
        public var asOf: Int64
        public var users: [(variant: String, users: Int)]
        public var comparisons: [MetricComparison]
        /// Per comparison, the always-valid p-value of the path so far (the running minimum for the mSPRT).
        public var pathP: [Double?]
        public var verdict: Verdict
    }

    public var config: FunnelConfig
    public var rows: [Row]

    public static func run(_ source: EventSource, configPath: String?, sequential: SequentialMethod?,
                           onProgress: (@Sendable (Int) -> Void)? = nil) throws(PipelineError) -> DailyPath {
        var config = try loadConfig(configPath)
        if let sequential { config.sequential = sequential }
        let log = try readEvents(source, onProgress: onProgress)
        var first = Int64.max, last = Int64.min
        for e in log.events {
            if e.type == .exposure { first = min(first, e.ts) }
            last = max(last, e.ts)
        }
        guard first != Int64.max else {
            throw PipelineError("--daily: the events hold no valid exposure, so the experiment has no first day; check the events (funnel validate)")
        }
        let dayMillis: Int64 = 86_400_000
        func day(_ ms: Int64) -> Int64 { ms >= 0 ? ms / dayMillis : -((-ms + dayMillis - 1) / dayMillis) }
        let firstDay = day(first), lastDay = day(last)
        guard lastDay - firstDay < 1000 else {
            throw PipelineError("--daily: the events span \(lastDay - firstDay + 1) days (from the first exposure); more than 1,000 days is not a daily path")
        }
        var rows: [Row] = []
        var running: [String: Double] = [:]
        for d in firstDay...lastDay {
            var c = config
            c.asOf = (d + 1) * dayMillis - 1
            let summary: ExperimentSummary
            do { summary = try Attributor.summarize(log, config: c, sensitivity: false) } catch {
                throw PipelineError("--daily: day \(Timestamp.rfc3339(d * dayMillis).prefix(10)): \(error.message)")
            }
            let a = Analysis(summary: summary, config: c)
            let primary = a.comparisons.filter { $0.segment == nil && $0.metric == config.primaryMetric }
            let pathP: [Double?] = primary.map { comparison in
                guard let p = comparison.sequential?.pValue else { return nil }
                guard config.sequential == .msprt else { return p }
                let sofar = min(running[comparison.variant] ?? 1, p)
                running[comparison.variant] = sofar
                return sofar
            }
            rows.append(Row(day: String(Timestamp.rfc3339(d * dayMillis).prefix(10)), asOf: c.asOf!,
                            users: a.variants.indices.map { (a.variants[$0], a.perVariant[$0].count) },
                            comparisons: primary, pathP: pathP, verdict: a.verdict))
        }
        return DailyPath(config: config, rows: rows)
    }

    /// The JSON document: the metric, the method and one object per day.
    public var document: JSONValue {
        .object([
            ("metric", .string(config.primaryMetric.rawValue)), ("sequential", .string(config.sequential.rawValue)),
            ("significance_level", .double(config.significanceLevel)),
            ("days", .array(rows.map { row in
                .object([
                    ("day", .string(row.day)), ("as_of", .string(Timestamp.rfc3339(row.asOf))),
                    ("users", .object(row.users.map { ($0.variant, .int($0.users)) })),
                    ("comparisons", .array(zip(row.comparisons, row.pathP).map { c, p in
                        .object([
                            ("variant", .string(c.variant)), ("relative_lift", .number(c.difference.relativeLift)),
                            ("relative_ci", .interval(c.difference.relativeCI)), ("p_value", .number(c.difference.pValue)),
                            ("always_valid_relative_ci", .interval(c.sequential?.relativeCI)), ("always_valid_p_value", .number(p)),
                        ])
                    })),
                    ("verdict", .string(row.verdict.rawValue)),
                ])
            })),
        ])
    }

    /// The rows of the printed table.
    public var table: [[String]] {
        func pct(_ v: Double?) -> String { v.map { String(format: "%+.1f%%", $0 * 100) } ?? "—" }
        func interval(_ v: (Double, Double)?) -> String { v.map { "[\(pct($0.0)), \(pct($0.1))]" } ?? "—" }
        func p(_ v: Double?) -> String {
            guard let v else { return "—" }
            return v != 0 && v < 1e-3 ? String(format: "%.2e", v) : String(format: "%.4g", v)
        }
        var out: [[String]] = [["day", "users", "variant", "lift", "interval", "p", "always-valid interval", "always-valid p", "verdict so far"]]
        for row in rows {
            let users = row.users.map { "\($0.users)" }.joined(separator: "/")
            for (c, pathP) in zip(row.comparisons, row.pathP) {
                out.append([row.day, users, c.variant, pct(c.difference.relativeLift), interval(c.difference.relativeCI), p(c.difference.pValue),
                            interval(c.sequential?.relativeCI), p(pathP), row.verdict.rawValue])
            }
            if row.comparisons.isEmpty { out.append([row.day, users, "—", "—", "—", "—", "—", "—", row.verdict.rawValue]) }
        }
        return out
    }
}
