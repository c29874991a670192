import FunnelEvents

/// One user's sufficient statistics for the experiment (DESIGN.md §4 count fields): every metric
/// of the report is a function of these per-user sums, so a SQL engine can produce them too.
public struct UserStats: Sendable, Equatable {
    public var impressions = 0
    public var clicks = 0
    public var carts = 0
    public var purchases = 0
    public var revenue = 0.0
    public var orders = 0
    public var converting = false
    public var orderRevenue = 0.0
    public init() {}
}

/// Counts summed over users of a group (variant, segment value, ...).
public struct GroupCounts: Sendable, Equatable {
    public var users = 0
    public var impressions = 0
    public var clicks = 0
    public var carts = 0
    public var purchases = 0
    public var revenue = 0.0
    public var orders = 0
    public var convertingUsers = 0
    public var orderRevenue = 0.0
    public init() {}

    public mutating func add(_ s: UserStats) {
        users += 1
        impressions += s.impressions
        clicks += s.clicks
        carts += s.carts
        purchases += s.purchases
        revenue += s.revenue
        orders += s.orders
        convertingUsers += s.converting ? 1 : 0
        orderRevenue += s.orderRevenue
    }
}

/// Counters of every counting rule (DESIGN.md §5 `data_quality`, except SRM).
public struct DataQuality: Sendable, Equatable {
    public var eventsRead = 0
    public var quarantined: [QuarantineReason: Int] = [:]
    public var duplicateEvents = 0
    public var botUsers = 0
    public var nonViewableImpressions = 0
    public var collapsedImpressions = 0
    public var orphanClicks = 0
    public var lateClicks = 0
    public var unattributedConversions = 0
    public var leakedUsers = 0
    public var variantMismatches = 0
    public var nonViewableClicks = 0
    public var duplicateClicks = 0
    /// Non-bot users exposed to the analysed experiment (leaked ones included).
    public var exposedUsers = 0
    public init() {}

    mutating func add(_ o: DataQuality) {
        botUsers += o.botUsers
        nonViewableImpressions += o.nonViewableImpressions
        collapsedImpressions += o.collapsedImpressions
        orphanClicks += o.orphanClicks
        lateClicks += o.lateClicks
        unattributedConversions += o.unattributedConversions
        leakedUsers += o.leakedUsers
        variantMismatches += o.variantMismatches
        nonViewableClicks += o.nonViewableClicks
        duplicateClicks += o.duplicateClicks
        exposedUsers += o.exposedUsers
    }
}

/// An analysed user: assigned, not a bot, not leaked.
public struct AnalysedUser: Sendable {
    public var user: Int32
    /// Index into `Attribution.variants`.
    public var variant: Int
    /// Time of the first exposure (epoch ms).
    public var firstExposure: Int64
    /// Context (key, value) label ids of the first exposure: the user's segments.
    public var segments: [(key: Int32, value: Int32)]
    public var stats: UserStats
    /// The same sums over the pre-exposure window (`cuped_lookback_days` before the first exposure).
    public var pre: UserStats
}

/// What one variant's analysed impressions of one item earned.
public struct ItemCounts: Sendable, Equatable {
    public var impressions = 0
    public var clicks = 0
    public var purchases = 0
    public init() {}
}

/// Impressions and clicks at one position.
public struct PositionCounts: Sendable, Equatable {
    public var impressions = 0
    public var clicks = 0
    public init() {}
}

/// Why the counting rules cannot run.
public struct AttributionError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }

    /// `what` (the events, the summaries) holds no valid exposure and funnel.yaml names no experiment.
    public static func noValidExposure(in what: String) -> AttributionError {
        AttributionError(message: "\(what) hold no valid exposure, so no experiment can be analysed; check that exposure events are present and valid (see the quarantine)")
    }
}

/// Everything the counting rules produce for one experiment.
public struct Attribution: Sendable {
    public var experiment: String
    /// Variant names; `users[i].variant` indexes this list.
    public var variants: [String]
    public var variantLabels: [Int32]
    public var users: [AnalysedUser]
    public var dataQuality: DataQuality
    /// Per variant index, per position.
    public var positions: [[Int32: PositionCounts]]
    /// Per variant index, per item id (`EventLog.items`): analysed impressions, clicks, purchases.
    public var items: [[Int32: ItemCounts]]
    /// Latest event time in the log (epoch ms), the end of the data.
    public var endOfData: Int64

    /// Counts per variant index.
    public func counts() -> [GroupCounts] {
        var out = [GroupCounts](repeating: GroupCounts(), count: variants.count)
        for u in users { out[u.variant].add(u.stats) }
        return out
    }
}

/// One decision of the logging policy: a served impression left after duplicates, bots and
/// viewability (rules 1–3), never collapsed by impression dedup (rule 4), with its own reward.
///
/// Off-policy evaluation, position-bias estimation and the click models' training rows use rounds,
/// not the report's counted impressions: a re-shown item is a second decision at its own position
/// under its own propensity, and collapsing it would move its click to the first showing (another
/// position, another propensity) and drop the decision (DESIGN.md §7, "Rounds").
public struct Round: Sendable, Equatable {
    /// Index of the impression in `EventLog.events`.
    public var event: Int32
    public var user: Int32
    public var item: Int32
    public var position: Int32
    /// Id in `EventLog.requests`, -1 when the impression has no `request_id`.
    public var request: Int32
    /// The logging policy's propensity; NaN when the impression carries none.
    public var propensity: Double
    /// The reward: a click naming this very impression inside the click window
    /// (−`clock_skew_seconds` … +`click_window_seconds` from its own `ts`, both inclusive).
    public var clicked: Bool
    public var ts: Int64
    /// Whether the counting rules collapse this impression into an earlier showing of the same
    /// item (rule 4): counted once in the report, but a round of its own here.
    public var collapsed: Bool
    /// The conversion label of the conversion models: clicked, and a purchase was attributed through
    /// a click to the impression this round counts as.
    public var purchased: Bool

    public init(event: Int32, user: Int32, item: Int32, position: Int32, request: Int32, propensity: Double,
                clicked: Bool, ts: Int64, collapsed: Bool, purchased: Bool = false) {
        self.event = event; self.user = user; self.item = item; self.position = position; self.request = request
        self.propensity = propensity; self.clicked = clicked; self.ts = ts; self.collapsed = collapsed; self.purchased = purchased
    }
}
