import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelStats

/// Per-variant metric estimates from per-user sufficient statistics (DESIGN.md §4).
public enum Metrics {
    /// Estimates of every metric for one group of users.
    public static func estimates(_ users: [UserStats], alpha: Double) -> [(MetricName, Estimate)] {
        let impressions = users.map { Double($0.impressions) }
        let clicks = users.map { Double($0.clicks) }
        let carts = users.map { Double($0.carts) }
        let purchases = users.map { Double($0.purchases) }
        let revenue = users.map { $0.revenue }
        let orders = users.map { Double($0.orders) }
        let orderRevenue = users.map { $0.orderRevenue }
        let converting = users.reduce(0) { $0 + ($1.converting ? 1 : 0) }
        return [
            (.ctr, Estimators.ratio(x: clicks, y: impressions, alpha: alpha)),
            (.cartRate, Estimators.ratio(x: carts, y: clicks, alpha: alpha)),
            (.postClickCVR, Estimators.ratio(x: purchases, y: clicks, alpha: alpha)),
            (.ctcvr, Estimators.ratio(x: purchases, y: impressions, alpha: alpha)),
            (.revenuePerImpression, Estimators.ratio(x: revenue, y: impressions, alpha: alpha)),
            (.userConversionRate, Estimators.proportion(successes: converting, trials: users.count, alpha: alpha)),
            (.purchasesPerUser, Estimators.mean(orders, alpha: alpha)),
            (.revenuePerUser, Estimators.mean(orderRevenue, alpha: alpha)),
            (.aov, Estimators.ratio(x: orderRevenue, y: orders, alpha: alpha)),
        ]
    }
}

/// Builds the report document (DESIGN.md §5) from the counting rules' output.
public struct ReportBuilder {
    public let attribution: Attribution
    public let config: FunnelConfig
    public let labels: StringTable

    public init(attribution: Attribution, config: FunnelConfig, labels: StringTable) {
        self.attribution = attribution
        self.config = config
        self.labels = labels
    }

    /// The SRM test over analysed user counts: (p-value, flag).
    public func srm() -> (p: Double?, flag: Bool) {
        let counts = attribution.counts().map { Double($0.users) }
        let weights: [Double]
        if let split = config.expectedSplit {
            weights = attribution.variants.map { split[$0] ?? 0 }
        } else {
            weights = counts.map { _ in 1 }
        }
        let p = Estimators.chiSquareGoodnessOfFit(observed: counts, weights: weights)
        return (p, p.map { $0 < config.srmPThreshold } ?? false)
    }

    func countsJSON(_ c: GroupCounts, users: [UserStats]?) -> [(String, JSONValue)] {
        var members: [(String, JSONValue)] = [
            ("users", .int(c.users)), ("impressions", .int(c.impressions)), ("clicks", .int(c.clicks)),
            ("carts", .int(c.carts)), ("purchases", .int(c.purchases)), ("revenue", .double(c.revenue)),
            ("orders", .int(c.orders)), ("converting_users", .int(c.convertingUsers)), ("order_revenue", .double(c.orderRevenue)),
        ]
        if let users {
            let metrics = Metrics.estimates(users, alpha: config.significanceLevel).map { name, e in
                (name.rawValue, JSONValue.object([("value", .number(e.value)), ("ci", .interval(e.ci))]))
            }
            members.append(("metrics", .object(metrics)))
        }
        return members
    }

    /// The report as a JSON document.
    public func json() -> JSONValue {
        let a = attribution
        var perVariant = [[UserStats]](repeating: [], count: a.variants.count)
        for u in a.users { perVariant[u.variant].append(u.stats) }
        let counts = a.counts()
        let variants: [(String, JSONValue)] = a.variants.indices.map { v in
            (a.variants[v], .object(countsJSON(counts[v], users: perVariant[v])))
        }

        let dq = a.dataQuality
        let srm = srm()
        let quarantined: [(String, JSONValue)] = QuarantineReason.allCases.map { ($0.rawValue, .int(dq.quarantined[$0] ?? 0)) }
        let dataQuality: JSONValue = .object([
            ("events_read", .int(dq.eventsRead)), ("quarantined", .object(quarantined)),
            ("duplicate_events", .int(dq.duplicateEvents)), ("bot_users", .int(dq.botUsers)),
            ("non_viewable_impressions", .int(dq.nonViewableImpressions)), ("collapsed_impressions", .int(dq.collapsedImpressions)),
            ("orphan_clicks", .int(dq.orphanClicks)), ("late_clicks", .int(dq.lateClicks)),
            ("unattributed_conversions", .int(dq.unattributedConversions)), ("leaked_users", .int(dq.leakedUsers)),
            ("variant_mismatches", .int(dq.variantMismatches)), ("non_viewable_clicks", .int(dq.nonViewableClicks)),
            ("duplicate_clicks", .int(dq.duplicateClicks)), ("exposed_users", .int(dq.exposedUsers)),
            ("srm", .object([("p_value", .number(srm.p)), ("flag", .bool(srm.flag))])),
        ])

        // Segments: dimension -> value -> variant -> counts (a user's segment is their first exposure's context).
        var seg: [Int32: [Int32: [Int: [UserStats]]]] = [:]
        for u in a.users {
            for pair in u.segments { seg[pair.key, default: [:]][pair.value, default: [:]][u.variant, default: []].append(u.stats) }
        }
        let segments: [(String, JSONValue)] = seg.keys.map { (labels[$0], $0) }.sorted { $0.0 < $1.0 }.map { name, key in
            let values = seg[key]!
            let members: [(String, JSONValue)] = values.keys.map { (labels[$0], $0) }.sorted { $0.0 < $1.0 }.map { vname, vkey in
                let byVariant = values[vkey]!
                let vs: [(String, JSONValue)] = a.variants.indices.compactMap { v in
                    guard let users = byVariant[v] else { return nil }
                    var c = GroupCounts()
                    for s in users { c.add(s) }
                    return (a.variants[v], .object(countsJSON(c, users: users)))
                }
                return (vname, .object(vs))
            }
            return (name, .object(members))
        }

        let positions: [(String, JSONValue)] = a.variants.indices.map { v in
            let members: [(String, JSONValue)] = a.positions[v].keys.sorted().map { p in
                let c = a.positions[v][p]!
                let ctr: JSONValue = c.impressions > 0 ? .double(Double(c.clicks) / Double(c.impressions)) : .null
                return (String(p), .object([("impressions", .int(c.impressions)), ("clicks", .int(c.clicks)), ("ctr", ctr)]))
            }
            return (a.variants[v], .object(members))
        }

        return .object([
            ("experiment", .string(a.experiment)),
            ("control", .string(config.control)),
            ("variants", .object(variants)),
            ("data_quality", dataQuality),
            ("segments", .object(segments)),
            ("positions", .object(positions)),
        ])
    }
}
