import Foundation
import Yams

/// A problem in a configuration file, naming the file, the line, the key and the allowed values.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int?
    public var key: String
    public var message: String

    public var description: String {
        "\(file)\(line.map { ":\($0)" } ?? ""): \(key): \(message)"
    }
}

/// Multiple-testing corrections for families of comparisons.
public enum Correction: String, Sendable, CaseIterable, Codable {
    case holm, bonferroni, benjaminiHochberg = "benjamini_hochberg", none
}

/// Always-valid inference beside the fixed-horizon tests (`ab_testing.sequential`).
public enum SequentialMethod: String, Sendable, CaseIterable, Codable {
    case none, confidenceSequence = "confidence-sequence", msprt
}

/// The metrics of DESIGN.md §4, by report key.
public enum MetricName: String, Sendable, CaseIterable, Codable {
    case ctr, cartRate = "cart_rate", postClickCVR = "post_click_cvr", ctcvr
    case revenuePerImpression = "revenue_per_impression", userConversionRate = "user_conversion_rate"
    case purchasesPerUser = "purchases_per_user", revenuePerUser = "revenue_per_user", aov
}

/// Every setting of `funnel.yaml` (DESIGN.md §3). All keys are optional; the defaults are the contract's.
public struct FunnelConfig: Sendable, Equatable {
    /// `impression_tracking`
    public var viewabilityThreshold = 0.5
    public var viewabilityDurationMs = 1000.0
    public var dedupWindowSeconds = 3600.0
    public var botFilter = true
    public var botMaxClicksPerMinute = 20
    /// `click_attribution`
    public var clickWindowSeconds = 1800.0
    public var clockSkewSeconds = 5.0
    public var dedupClicks = true
    public var conversionWindowHours = 24.0
    public var viewThrough = false
    public var viewThroughWindowHours = 168.0
    /// `ab_testing`
    public var experiment: String? = nil
    public var control = "control"
    public var expectedSplit: [String: Double]? = nil
    public var significanceLevel = 0.05
    public var correction = Correction.holm
    public var primaryMetric = MetricName.purchasesPerUser
    public var guardrailMetrics: [MetricName] = [.ctcvr, .revenuePerUser]
    public var srmPThreshold = 0.001
    /// CUPED variance reduction with each user's pre-exposure value of the same metric.
    public var cuped = false
    public var cupedLookbackDays = 14.0
    /// Always-valid intervals and p-values for every comparison (the verdict then uses them), and
    /// the confidence sequence's tuning N*: the total users at which its interval is tightest.
    public var sequential = SequentialMethod.none
    public var sequentialTuning = 5000.0
    /// Count only the events up to this instant (epoch ms, inclusive), as if the log ended there:
    /// `funnel report --as-of` and `--daily`, not a funnel.yaml key.
    public var asOf: Int64? = nil
    /// `position_bias`: how the report estimates examination propensities per position for its
    /// debiased click-through (`none`: no debiased section), or fixed `propensities` (position 1
    /// first); the clip `floor`; which impressions were shown in shuffled order
    /// (`randomized_context`, a `key=value` of the impression's context); the context key that
    /// names the ranker (`ranker_context`, else the impression's variant).
    public var positionBiasMethod = "none"
    public var positionBiasPropensities: [Double]? = nil
    public var positionBiasFloor = 0.05
    public var randomizedContext = "ranker=random"
    public var rankerContext = "ranker"

    public static let positionBiasMethods = ["none", "randomized", "em", "harvesting"]

    public init() {}

    /// Milliseconds of a seconds/hours setting (rounded to the nearest millisecond).
    public static func millis(seconds: Double) -> Int64 { Int64((seconds * 1000).rounded()) }
    public static func millis(hours: Double) -> Int64 { Int64((hours * 3_600_000).rounded()) }

    /// Reads a YAML file.
    public static func load(path: String) throws(ConfigError) -> FunnelConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, line: nil, key: "(file)", message: "cannot read the configuration file; check the path")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: nil, key: "(file)", message: "the file is not UTF-8 text")
        }
        return try parse(yaml: text, file: path)
    }

    /// Parses YAML text; `file` names it in errors.
    public static func parse(yaml: String, file: String = "funnel.yaml") throws(ConfigError) -> FunnelConfig {
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch {
            throw ConfigError(file: file, line: nil, key: "(syntax)", message: "not valid YAML: \(error)")
        }
        var config = FunnelConfig()
        guard let root else { return config }
        if root.null != nil { return config }
        guard let sections = root.mapping else {
            throw ConfigError(file: file, line: root.mark?.line, key: "(top level)", message: "must be a mapping with sections impression_tracking, click_attribution, ab_testing, position_bias")
        }
        var reader = Reader(file: file)
        for (keyNode, value) in sections {
            let key = keyNode.string ?? "\(keyNode)"
            switch key {
            case "impression_tracking": try reader.impressionTracking(value, &config)
            case "click_attribution": try reader.clickAttribution(value, &config)
            case "ab_testing": try reader.abTesting(value, &config)
            case "position_bias": try reader.positionBias(value, &config)
            default:
                throw ConfigError(file: file, line: keyNode.mark?.line, key: key,
                    message: "unknown section; allowed: impression_tracking, click_attribution, ab_testing, position_bias")
            }
        }
        return config
    }
}

struct Reader {
    let file: String

    func fail(_ node: Node, _ key: String, _ message: String) -> ConfigError {
        ConfigError(file: file, line: node.mark?.line, key: key, message: message)
    }

    func entries(_ node: Node, section: String, allowed: [String]) throws(ConfigError) -> [(String, Node, Node)] {
        if node.null != nil { return [] }
        guard let mapping = node.mapping else { throw fail(node, section, "must be a mapping of \(allowed.joined(separator: ", "))") }
        var out: [(String, Node, Node)] = []
        for (k, v) in mapping {
            let key = k.string ?? "\(k)"
            guard allowed.contains(key) else {
                throw fail(k, "\(section).\(key)", "unknown key; allowed: \(allowed.joined(separator: ", "))")
            }
            out.append((key, k, v))
        }
        return out
    }

    func number(_ node: Node, _ key: String, min: Double, max: Double = .infinity, minOpen: Bool = false, maxOpen: Bool = false) throws(ConfigError) -> Double {
        guard node.bool == nil, node.null == nil, let scalar = node.scalar, scalar.style == .plain, let v = node.float ?? node.int.map(Double.init), v.isFinite else {
            throw fail(node, key, "must be a number\(describeRange(min, max, minOpen, maxOpen))")
        }
        let lowOK = minOpen ? v > min : v >= min
        let highOK = maxOpen ? v < max : v <= max
        guard lowOK && highOK else { throw fail(node, key, "is \(v); allowed\(describeRange(min, max, minOpen, maxOpen))") }
        return v
    }

    func describeRange(_ min: Double, _ max: Double, _ minOpen: Bool, _ maxOpen: Bool) -> String {
        if max.isInfinite { return " \(minOpen ? ">" : "≥") \(fmt(min))" }
        return " in \(minOpen ? "(" : "[")\(fmt(min)), \(fmt(max))\(maxOpen ? ")" : "]")"
    }

    func fmt(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }

    func integer(_ node: Node, _ key: String, min: Int) throws(ConfigError) -> Int {
        guard node.bool == nil, let scalar = node.scalar, scalar.style == .plain, let v = node.int else {
            throw fail(node, key, "must be an integer ≥ \(min)")
        }
        guard v >= min else { throw fail(node, key, "is \(v); allowed: an integer ≥ \(min)") }
        return v
    }

    func boolean(_ node: Node, _ key: String) throws(ConfigError) -> Bool {
        guard let scalar = node.scalar, scalar.style == .plain, let v = node.bool else { throw fail(node, key, "must be true or false") }
        return v
    }

    func string(_ node: Node, _ key: String) throws(ConfigError) -> String {
        guard node.null == nil, let scalar = node.scalar, !scalar.string.isEmpty else { throw fail(node, key, "must be a non-empty string") }
        return scalar.string
    }

    func metric(_ node: Node, _ key: String) throws(ConfigError) -> MetricName {
        let allowed = MetricName.allCases.map(\.rawValue).joined(separator: ", ")
        guard let s = node.scalar?.string, let m = MetricName(rawValue: s) else {
            throw fail(node, key, "unknown metric '\(node.scalar?.string ?? "\(node)")'; allowed: \(allowed)")
        }
        return m
    }

    mutating func impressionTracking(_ node: Node, _ c: inout FunnelConfig) throws(ConfigError) {
        let allowed = ["viewability_threshold", "viewability_duration_ms", "dedup_window_seconds", "bot_filter", "bot_max_clicks_per_minute"]
        for (key, _, v) in try entries(node, section: "impression_tracking", allowed: allowed) {
            let name = "impression_tracking.\(key)"
            switch key {
            case "viewability_threshold": c.viewabilityThreshold = try number(v, name, min: 0, max: 1)
            case "viewability_duration_ms": c.viewabilityDurationMs = try number(v, name, min: 0)
            case "dedup_window_seconds": c.dedupWindowSeconds = try number(v, name, min: 0)
            case "bot_filter": c.botFilter = try boolean(v, name)
            default: c.botMaxClicksPerMinute = try integer(v, name, min: 1)
            }
        }
    }

    mutating func clickAttribution(_ node: Node, _ c: inout FunnelConfig) throws(ConfigError) {
        let allowed = ["click_window_seconds", "clock_skew_seconds", "dedup_clicks", "conversion_window_hours", "view_through", "view_through_window_hours"]
        for (key, _, v) in try entries(node, section: "click_attribution", allowed: allowed) {
            let name = "click_attribution.\(key)"
            switch key {
            case "click_window_seconds": c.clickWindowSeconds = try number(v, name, min: 0)
            case "clock_skew_seconds": c.clockSkewSeconds = try number(v, name, min: 0)
            case "dedup_clicks": c.dedupClicks = try boolean(v, name)
            case "conversion_window_hours": c.conversionWindowHours = try number(v, name, min: 0)
            case "view_through": c.viewThrough = try boolean(v, name)
            default: c.viewThroughWindowHours = try number(v, name, min: 0)
            }
        }
    }

    mutating func abTesting(_ node: Node, _ c: inout FunnelConfig) throws(ConfigError) {
        let allowed = ["experiment", "control", "expected_split", "significance_level", "correction", "primary_metric",
                       "guardrail_metrics", "srm_p_threshold", "cuped", "cuped_lookback_days", "sequential", "sequential_tuning"]
        for (key, _, v) in try entries(node, section: "ab_testing", allowed: allowed) {
            let name = "ab_testing.\(key)"
            switch key {
            case "experiment": c.experiment = v.null != nil ? nil : try string(v, name)
            case "control": c.control = try string(v, name)
            case "expected_split":
                if v.null != nil { c.expectedSplit = nil; continue }
                guard let mapping = v.mapping, !mapping.isEmpty else { throw fail(v, name, "must be null or a mapping {variant: weight > 0}") }
                var split: [String: Double] = [:]
                for (k, w) in mapping {
                    let variant = try string(k, name)
                    split[variant] = try number(w, "\(name).\(variant)", min: 0, minOpen: true)
                }
                c.expectedSplit = split
            case "significance_level": c.significanceLevel = try number(v, name, min: 0, max: 1, minOpen: true, maxOpen: true)
            case "correction":
                let allowedValues = Correction.allCases.map(\.rawValue).joined(separator: " | ")
                guard let s = v.scalar?.string, let m = Correction(rawValue: s) else {
                    throw fail(v, name, "unknown correction '\(v.scalar?.string ?? "")'; allowed: \(allowedValues)")
                }
                c.correction = m
            case "primary_metric": c.primaryMetric = try metric(v, name)
            case "guardrail_metrics":
                if v.null != nil { c.guardrailMetrics = []; continue }
                guard let seq = v.sequence else { throw fail(v, name, "must be a list of metric names") }
                var list: [MetricName] = []
                for item in seq { list.append(try metric(item, name)) }
                c.guardrailMetrics = list
            case "cuped": c.cuped = try boolean(v, name)
            case "cuped_lookback_days": c.cupedLookbackDays = try number(v, name, min: 0, minOpen: true)
            case "sequential":
                let allowedValues = SequentialMethod.allCases.map(\.rawValue).joined(separator: " | ")
                guard let s = v.scalar?.string, let m = SequentialMethod(rawValue: s) else {
                    throw fail(v, name, "unknown method '\(v.scalar?.string ?? "")'; allowed: \(allowedValues)")
                }
                c.sequential = m
            case "sequential_tuning": c.sequentialTuning = try number(v, name, min: 0, minOpen: true)
            default: c.srmPThreshold = try number(v, name, min: 0, max: 1, minOpen: true, maxOpen: true)
            }
        }
    }

    mutating func positionBias(_ node: Node, _ c: inout FunnelConfig) throws(ConfigError) {
        let allowed = ["method", "propensities", "floor", "randomized_context", "ranker_context"]
        for (key, _, v) in try entries(node, section: "position_bias", allowed: allowed) {
            let name = "position_bias.\(key)"
            switch key {
            case "method":
                let m = try string(v, name)
                guard FunnelConfig.positionBiasMethods.contains(m) else {
                    throw fail(v, name, "unknown method '\(m)'; allowed: \(FunnelConfig.positionBiasMethods.joined(separator: " | "))")
                }
                c.positionBiasMethod = m
            case "propensities":
                if v.null != nil { c.positionBiasPropensities = nil; continue }
                guard let seq = v.sequence, !seq.isEmpty else { throw fail(v, name, "must be null or a list of numbers in (0, 1], position 1 first") }
                var list: [Double] = []
                for (k, item) in seq.enumerated() { list.append(try number(item, "\(name)[\(k + 1)]", min: 0, max: 1, minOpen: true)) }
                c.positionBiasPropensities = list
            case "floor": c.positionBiasFloor = try number(v, name, min: 0, max: 1, minOpen: true)
            case "randomized_context":
                let s = try string(v, name)
                guard s.split(separator: "=", omittingEmptySubsequences: false).count == 2 else {
                    throw fail(v, name, "is '\(s)'; allowed: key=value (a context key and the value that marks shuffled traffic)")
                }
                c.randomizedContext = s
            default: c.rankerContext = try string(v, name)
            }
        }
    }
}
