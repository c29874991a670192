import FunnelBase
import FunnelConfig
import FunnelEvents
import FunnelStats

/// The per-user quantities behind every metric (DESIGN.md §4), in the order of the moments'
/// coordinates; the pre-exposure window's (CUPED) follow at `count + i`.
public enum Quantity: Int, CaseIterable, Sendable {
    case impressions, clicks, carts, purchases, revenue, orders, converting, orderRevenue

    /// Coordinates of the experiment-period quantities.
    public static let count = 8
}

extension UserStats {
    /// Writes the quantities (`Quantity` order) at `offset`.
    @inline(__always) func write(into x: inout [Double], at offset: Int) {
        x[offset] = Double(impressions); x[offset + 1] = Double(clicks); x[offset + 2] = Double(carts)
        x[offset + 3] = Double(purchases); x[offset + 4] = revenue; x[offset + 5] = Double(orders)
        x[offset + 6] = converting ? 1 : 0; x[offset + 7] = orderRevenue
    }
}

extension GroupCounts {
    /// The counts of a group from its moments.
    public init(_ m: Moments) {
        self.init()
        users = m.count
        impressions = Int(m.sum(Quantity.impressions.rawValue))
        clicks = Int(m.sum(Quantity.clicks.rawValue))
        carts = Int(m.sum(Quantity.carts.rawValue))
        purchases = Int(m.sum(Quantity.purchases.rawValue))
        revenue = m.sum(Quantity.revenue.rawValue)
        orders = Int(m.sum(Quantity.orders.rawValue))
        convertingUsers = Int(m.sum(Quantity.converting.rawValue))
        orderRevenue = m.sum(Quantity.orderRevenue.rawValue)
    }
}

/// One variant's part of a summary.
public struct VariantSummary: Sendable, Equatable {
    /// Moments of the analysed users' quantities: the experiment period's, then the pre-exposure
    /// window's (2 × `Quantity.count` coordinates).
    public var users = Moments(dimension: 2 * Quantity.count)
    /// Users with an impression or an order in the pre-exposure window.
    public var usersWithPreData = 0
    /// Counted impressions and clicks per position.
    public var positions: [Int32: PositionCounts] = [:]
    /// Counted impressions, clicks and purchases per item id.
    public var items: [String: ItemCounts] = [:]
    /// The users' moments under each of `ExperimentSummary.windowHours`' conversion windows.
    public var windows: [Moments] = []
    /// Moments of the experiment-period quantities of the users first exposed in each minute
    /// (epoch ms / 60,000) of the last conversion window before the end of the data: what the
    /// right-censoring diagnosis removes.
    public var tail: [Int64: Moments] = [:]

    public init() {}

    mutating func merge(_ o: VariantSummary) {
        users.merge(o.users)
        usersWithPreData += o.usersWithPreData
        for (k, c) in o.positions {
            positions[k, default: PositionCounts()].impressions += c.impressions
            positions[k, default: PositionCounts()].clicks += c.clicks
        }
        for (k, c) in o.items {
            items[k, default: ItemCounts()].impressions += c.impressions
            items[k, default: ItemCounts()].clicks += c.clicks
            items[k, default: ItemCounts()].purchases += c.purchases
        }
        if windows.isEmpty { windows = o.windows.map { Moments(dimension: $0.dimension) } }
        for i in windows.indices where i < o.windows.count { windows[i].merge(o.windows[i]) }
        for (m, x) in o.tail { tail[m, default: Moments(dimension: Quantity.count)].merge(x) }
    }
}

/// A segment: a context key and value of the first exposure.
public struct SegmentKey: Hashable, Sendable, Comparable {
    public var dimension: String
    public var value: String
    public init(dimension: String, value: String) { self.dimension = dimension; self.value = value }
    public static func < (a: SegmentKey, b: SegmentKey) -> Bool { (a.dimension, a.value) < (b.dimension, b.value) }
}

/// Why two summaries cannot be merged.
public struct SummaryError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Everything the report's statistics and diagnosis need from a set of users, as one value with an
/// associative, commutative merge (`merging`): counts and data-quality counters, per variant and
/// per segment × variant the moments of the per-user sums, per-position and per-item counts, the
/// same moments under the alternative conversion windows, the end of the data and the tail of
/// first exposures the right-censoring diagnosis needs. Per-user values are folded into moments
/// where they are computed and never kept.
///
/// Not in the summary: the position-bias section, whose propensities and bootstrap intervals need
/// the rounds themselves (`funnel report --events` computes it).
public struct ExperimentSummary: Sendable, Equatable {
    /// The conversion windows of the attribution-window sensitivity diagnosis (hours).
    public static let sensitivityWindows: [Double] = [1, 24, 72, 168]

    public var experiment: String
    /// The counting rules the summary was computed under (`ExperimentSummary.rulesKey`).
    public var rules: String
    public var dataQuality: DataQuality
    public var variants: [String: VariantSummary]
    /// Per segment, per variant: moments of the experiment-period quantities.
    public var segments: [SegmentKey: [String: Moments]]
    /// Conversion windows of `VariantSummary.windows` (hours).
    public var windowHours: [Double]
    /// Latest event time (epoch ms), `Int64.min` when no event was read.
    public var endOfData: Int64
    /// The conversion window the tail covers (ms).
    public var tailWindow: Int64
    /// Every item id the events name (the catalog's size for coverage when no items file is given).
    public var itemsSeen: Set<String> = []

    public init(experiment: String, rules: String, windowHours: [Double], tailWindow: Int64) {
        self.experiment = experiment
        self.rules = rules
        dataQuality = DataQuality()
        variants = [:]
        segments = [:]
        self.windowHours = windowHours
        endOfData = Int64.min
        self.tailWindow = tailWindow
    }

    /// The canonical description of the settings that decide a summary's numbers: two summaries
    /// merge only when theirs are equal.
    public static func rulesKey(_ c: FunnelConfig) -> String {
        func n(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : "\(x)" }
        return [
            "viewability_threshold=\(n(c.viewabilityThreshold))", "viewability_duration_ms=\(n(c.viewabilityDurationMs))",
            "dedup_window_seconds=\(n(c.dedupWindowSeconds))", "bot_filter=\(c.botFilter)",
            "bot_max_clicks_per_minute=\(c.botMaxClicksPerMinute)", "click_window_seconds=\(n(c.clickWindowSeconds))",
            "clock_skew_seconds=\(n(c.clockSkewSeconds))", "dedup_clicks=\(c.dedupClicks)",
            "conversion_window_hours=\(n(c.conversionWindowHours))", "view_through=\(c.viewThrough)",
            "view_through_window_hours=\(n(c.viewThroughWindowHours))", "cuped_lookback_days=\(n(c.cupedLookbackDays))",
        ].joined(separator: ";") + (c.asOf.map { ";as_of=\($0)" } ?? "")
    }

    /// The minute (epoch ms / 60,000, rounded down) of a time.
    public static func minute(of ms: Int64) -> Int64 {
        ms >= 0 ? ms / 60_000 : -((-ms + 59_999) / 60_000)
    }

    /// The first minute whose users the tail must keep for an end of data `end`.
    static func tailStart(end: Int64, window: Int64) -> Int64 { minute(of: end - window) }

    /// Drops tail minutes no end of data at or after the current one can need.
    mutating func pruneTail() {
        guard endOfData != Int64.min else { return }
        let start = ExperimentSummary.tailStart(end: endOfData, window: tailWindow)
        for k in variants.keys { variants[k]!.tail = variants[k]!.tail.filter { $0.key >= start } }
    }

    /// The merge of two summaries of disjoint sets of users: associative and commutative. A
    /// summary of users none of whom was exposed (`experiment` empty) merges with any.
    public func merging(_ o: ExperimentSummary) throws(SummaryError) -> ExperimentSummary {
        guard experiment == o.experiment || experiment.isEmpty || o.experiment.isEmpty else {
            throw SummaryError("the summaries are of different experiments ('\(experiment)' and '\(o.experiment)'); summarize every part with the same ab_testing.experiment")
        }
        guard rules == o.rules else {
            throw SummaryError("the summaries were computed under different counting rules (\(rules) against \(o.rules)); summarize every part with the same funnel.yaml")
        }
        guard windowHours == o.windowHours, tailWindow == o.tailWindow else {
            throw SummaryError("the summaries hold different conversion windows; summarize every part with the same funnel version and funnel.yaml")
        }
        var out = self
        if out.experiment.isEmpty { out.experiment = o.experiment }
        out.dataQuality.merge(o.dataQuality)
        for (name, v) in o.variants { out.variants[name, default: VariantSummary()].merge(v) }
        for (key, groups) in o.segments {
            for (name, m) in groups { out.segments[key, default: [:]][name, default: Moments(dimension: m.dimension)].merge(m) }
        }
        out.endOfData = max(endOfData, o.endOfData)
        out.itemsSeen.formUnion(o.itemsSeen)
        out.pruneTail()
        return out
    }

    /// The summary as it would be under sensitivity window `i` (`windowHours[i]`): each variant's
    /// users are that window's; no segments and no further windows.
    public func underWindow(_ i: Int) -> ExperimentSummary {
        var out = self
        for k in out.variants.keys { out.variants[k]!.users = variants[k]!.windows[i] }
        out.segments = [:]
        out.windowHours = []
        for k in out.variants.keys { out.variants[k]!.windows = [] }
        return out
    }

    /// The variants in report order: the control first (when present), then by name.
    public func orderedVariants(control: String) -> [String] {
        variants.keys.sorted { a, b in
            if (a == control) != (b == control) { return a == control }
            return a < b
        }
    }
}

extension DataQuality {
    /// Adds every counter of another part, the reading counters included.
    public mutating func merge(_ o: DataQuality) {
        add(o)
        eventsRead += o.eventsRead
        duplicateEvents += o.duplicateEvents
        for (r, n) in o.quarantined { quarantined[r, default: 0] += n }
    }
}

extension Attributor {
    /// The summary of a log: the counting rules under the configured conversion window and (with
    /// `sensitivity`) under each of the sensitivity windows, folded into moments.
    ///
    /// With `partOfLarger` (one partition of a log split by user), a log without any exposure gives
    /// a summary with an empty experiment (its counters only), which merges with the other parts'.
    public static func summarize(_ log: EventLog, config: FunnelConfig, sensitivity: Bool = true,
                                 partOfLarger: Bool = false) throws(AttributionError) -> ExperimentSummary {
        try summarizeWithAttribution(log, config: config, sensitivity: sensitivity, partOfLarger: partOfLarger).summary
    }

    /// `summarize`, with the configured window's attribution it folded (the users' assignment).
    public static func summarizeWithAttribution(_ log: EventLog, config: FunnelConfig, sensitivity: Bool = true,
                                                partOfLarger: Bool = false) throws(AttributionError) -> (summary: ExperimentSummary, attribution: Attribution) {
        var config = config
        if partOfLarger && config.experiment == nil && !log.events.contains(where: { $0.type == .exposure }) {
            config.experiment = ""
        }
        let (base, windows) = try runWithSensitivity(log, config: config, sensitivity: sensitivity)
        return (try summary(base, windows: windows, log: log, config: config), base)
    }

    /// The rules under the configured window and (with `sensitivity`) one attribution per
    /// `ExperimentSummary.sensitivityWindows` entry, in that order (the configured one reused).
    public static func runWithSensitivity(_ log: EventLog, config: FunnelConfig, sensitivity: Bool = true) throws(AttributionError) -> (base: Attribution, windows: [Attribution]) {
        let hours = sensitivity ? ExperimentSummary.sensitivityWindows : []
        let (base, runs) = try run(log, config: config, windows: hours.filter { $0 != config.conversionWindowHours })
        var windows: [Attribution] = []
        var next = 0
        for w in hours {
            if w == config.conversionWindowHours { windows.append(base) } else { windows.append(runs[next]); next += 1 }
        }
        return (base, windows)
    }

    /// Folds attributions (the configured window's and each sensitivity window's) into a summary.
    /// Throws when a user's sum is beyond what the moments hold exactly (2³¹).
    public static func summary(_ a: Attribution, windows: [Attribution], log: EventLog, config: FunnelConfig) throws(AttributionError) -> ExperimentSummary {
        do throws(MomentsRangeError) {
            return try foldSummary(a, windows: windows, log: log, config: config)
        } catch {
            throw AttributionError(message: "a user's per-user sum is \(error.value), beyond the ±2³¹ the report's sums hold exactly; check the unit of prices and quantities (cents instead of currency units?)")
        }
    }

    static func foldSummary(_ a: Attribution, windows: [Attribution], log: EventLog, config: FunnelConfig) throws(MomentsRangeError) -> ExperimentSummary {
        let tailWindow = FunnelConfig.millis(hours: config.conversionWindowHours)
        var s = ExperimentSummary(experiment: a.experiment, rules: ExperimentSummary.rulesKey(config),
                                  windowHours: windows.isEmpty ? [] : ExperimentSummary.sensitivityWindows, tailWindow: tailWindow)
        s.dataQuality = a.dataQuality
        s.endOfData = a.endOfData
        if let cutoff = config.asOf {
            // As of an instant, the catalog seen is that of the events up to it.
            var seen = Set<Int32>()
            for e in log.events where e.ts <= cutoff {
                if e.item >= 0 { seen.insert(e.item) }
                if e.type == .purchase { for line in log.purchaseLines(of: e) where line.item >= 0 { seen.insert(line.item) } }
            }
            s.itemsSeen = Set(seen.map { log.items[$0] })
        } else {
            s.itemsSeen = Set((0..<log.items.count).map { log.items[Int32($0)] })
        }
        let tailStart = a.endOfData == Int64.min ? Int64.max : ExperimentSummary.tailStart(end: a.endOfData, window: tailWindow)
        var parts = a.variants.map { _ in VariantSummary() }
        for v in parts.indices { parts[v].windows = windows.map { _ in Moments(dimension: 2 * Quantity.count) } }
        var x = [Double](repeating: 0, count: 2 * Quantity.count)
        // Segments by (dimension, value) label pair: a dense index, named once.
        var segmentIndex: [UInt64: Int] = [:]
        var segmentKeys: [SegmentKey] = []
        var segmentParts: [[Moments]] = []
        for i in a.users.indices {
            let variant = a.users[i].variant
            a.users[i].stats.write(into: &x, at: 0)
            a.users[i].pre.write(into: &x, at: Quantity.count)
            try parts[variant].users.add(x)
            if a.users[i].pre.impressions + a.users[i].pre.orders > 0 { parts[variant].usersWithPreData += 1 }
            try x.withUnsafeBufferPointer { (b) throws(MomentsRangeError) in
                let current = UnsafeBufferPointer(rebasing: b[0..<Quantity.count])
                for pair in a.users[i].segments {
                    let packed = UInt64(UInt32(bitPattern: pair.key)) << 32 | UInt64(UInt32(bitPattern: pair.value))
                    let index: Int
                    if let k = segmentIndex[packed] { index = k } else {
                        index = segmentKeys.count
                        segmentIndex[packed] = index
                        segmentKeys.append(SegmentKey(dimension: log.labels[pair.key], value: log.labels[pair.value]))
                        segmentParts.append(a.variants.map { _ in Moments(dimension: Quantity.count) })
                    }
                    try segmentParts[index][variant].add(current)
                }
                let minute = ExperimentSummary.minute(of: a.users[i].firstExposure)
                if minute >= tailStart { try parts[variant].tail[minute, default: Moments(dimension: Quantity.count)].add(current) }
            }
        }
        for (w, wa) in windows.enumerated() {
            for u in wa.users {
                u.stats.write(into: &x, at: 0)
                u.pre.write(into: &x, at: Quantity.count)
                guard let v = a.variants.firstIndex(of: wa.variants[u.variant]) else { continue }
                try parts[v].windows[w].add(x)
            }
        }
        for v in parts.indices {
            for (p, c) in a.positions[v] { parts[v].positions[p] = c }
            for (item, c) in a.items[v] { parts[v].items[log.items[item]] = c }
        }
        for (v, name) in a.variants.enumerated() { s.variants[name] = parts[v] }
        for (key, groups) in zip(segmentKeys, segmentParts) {
            var byName: [String: Moments] = [:]
            for (v, m) in groups.enumerated() where m.count > 0 { byName[a.variants[v]] = m }
            s.segments[key] = byName
        }
        return s
    }
}
