import Foundation
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelOPE

/// Position-bias propensities and debiased click-through from an event log: shared by
/// `funnel position-bias` and the report's `position_bias` section.
public enum PositionBiasReport {
    /// Kept impressions (rules 1–5) as click records, with the impressions themselves and the names
    /// of the rankers. An impression is randomized when its context has `randomized_context`
    /// (key=value); its ranker is its context's `ranker_context` value, else its `variant`, else
    /// "default". The cluster is the user.
    public static func records(_ log: EventLog, config: FunnelConfig) -> (records: [ClickRecord], kept: [LoggedImpression], rankers: [String]) {
        let kept = Attributor.keptImpressions(log, config: config)
        let parts = config.randomizedContext.split(separator: "=", maxSplits: 1).map(String.init)
        let randomKey = log.labels.lookup(parts[0]), randomValue = parts.count > 1 ? log.labels.lookup(parts[1]) : nil
        let rankerKey = log.labels.lookup(config.rankerContext)
        var rankerIndex: [Int32: Int32] = [:]
        var rankers: [String] = []
        func rankerID(_ label: Int32) -> Int32 {
            if let r = rankerIndex[label] { return r }
            let r = Int32(rankers.count)
            rankerIndex[label] = r
            rankers.append(label >= 0 ? log.labels[label] : "default")
            return r
        }
        var records: [ClickRecord] = []
        records.reserveCapacity(kept.count)
        for k in kept {
            let context = log.impressionContext(at: Int(k.event))
            var randomized = false
            var ranker: Int32 = log.events[Int(k.event)].variant
            for pair in context {
                if let randomKey, let randomValue, pair.key == randomKey, pair.value == randomValue { randomized = true }
                if let rankerKey, pair.key == rankerKey { ranker = pair.value }
            }
            records.append(ClickRecord(cluster: k.user, item: k.item, position: k.position, clicked: k.clicks > 0,
                                       randomized: randomized, ranker: rankerID(ranker)))
        }
        return (records, kept, rankers)
    }

    /// Fixed propensities as an estimate-shaped value (no intervals).
    public static func fixed(_ propensities: [Double]) -> (propensities: [Double], intervals: [(Double, Double)?]) {
        let base = propensities[0]
        return (propensities.map { $0 / base }, propensities.map { _ in nil })
    }

    /// `{"1": {"propensity": 1.0, "ci": [1, 1], "naive": .., "impressions": .., "clicks": ..}, …}`.
    public static func positionsJSON(_ e: PositionBias.Estimate) -> JSONValue {
        .object(e.propensities.indices.map { k in
            (String(k + 1), .object([
                ("propensity", .number(e.propensities[k])), ("ci", .interval(e.intervals[k])), ("naive", .number(e.naive[k])),
                ("impressions", .int(e.impressions[k])), ("clicks", .int(e.clicks[k])),
            ]))
        })
    }

    static func ctrJSON(_ d: PositionBias.DebiasedCTR) -> [(String, JSONValue)] {
        [("impressions", .int(d.impressions)), ("clicks", .int(d.clicks)), ("ctr", .number(d.naive)), ("ips_ctr", .number(d.ips))]
    }

    /// Per-item naive and debiased click-through over `kept`, grouped by `group` (nil: skipped);
    /// the `limit` items with most impressions in each group, most impressions first.
    public static func items(_ kept: [LoggedImpression], log: EventLog, propensities: [Double], floor: Double,
                             groups: [String], limit: Int, group: (LoggedImpression) -> Int?) -> [JSONValue] {
        var table: [[Int32: PositionBias.DebiasedCTR]] = groups.map { _ in [:] }
        for k in kept {
            guard let g = group(k) else { continue }
            table[g][k.item, default: PositionBias.DebiasedCTR()].add(position: Int(k.position), clicked: k.clicks > 0,
                                                                     propensities: propensities, floor: floor)
        }
        var out: [JSONValue] = []
        for (g, name) in groups.enumerated() {
            let top = table[g].sorted { ($0.value.impressions, $1.key) > ($1.value.impressions, $0.key) }.prefix(limit)
            for (item, d) in top {
                out.append(.object([("variant", .string(name)), ("item_id", .string(log.items[item]))] + ctrJSON(d)))
            }
        }
        return out
    }

    /// The report's `position_bias` section, or nil when `position_bias.method` is `none` and no
    /// fixed propensities are configured. Propensities are estimated on every kept impression (both
    /// arms, before and after exposure: position bias is a property of the surface); the debiased
    /// click-through per variant uses the report's own impressions (the `positions` table), and
    /// per item the analysed users' impressions from their first exposure on.
    public static func section(log: EventLog, attribution: Attribution, config: FunnelConfig,
                               bootstrap: Int = 100, seed: UInt64 = 1) throws -> JSONValue? {
        let method = config.positionBiasMethod
        guard method != "none" || config.positionBiasPropensities != nil else { return nil }
        let (records, kept, _) = records(log, config: config)
        var propensities: [Double]
        var positions: JSONValue
        var warnings: [String] = []
        if let fixedList = config.positionBiasPropensities, method == "none" {
            propensities = fixed(fixedList).propensities
            positions = .object(propensities.indices.map { (String($0 + 1), .object([("propensity", .double(propensities[$0])), ("ci", .null)])) })
        } else {
            let m = PositionBias.Method(rawValue: method)!
            let e = try PositionBias.estimate(records, method: m, bootstrap: bootstrap, alpha: config.significanceLevel, seed: seed)
            propensities = e.propensities
            positions = positionsJSON(e)
            warnings = e.warnings
        }
        let floor = config.positionBiasFloor
        let variants: [(String, JSONValue)] = attribution.variants.indices.map { v in
            var d = PositionBias.DebiasedCTR()
            for (p, c) in attribution.positions[v] {
                d.impressions += c.impressions
                d.clicks += c.clicks
                d.weightedClicks += Double(c.clicks) * PositionBias.weight(position: Int(p), propensities: propensities, floor: floor)
            }
            return (attribution.variants[v], .object(ctrJSON(d)))
        }
        var assigned: [Int32: (variant: Int, from: Int64)] = [:]
        for u in attribution.users { assigned[u.user] = (u.variant, u.firstExposure) }
        let items = items(kept, log: log, propensities: propensities, floor: floor, groups: attribution.variants, limit: 20) { k in
            guard let a = assigned[k.user], k.ts >= a.from else { return nil }
            return a.variant
        }
        return .object([
            ("method", .string(method == "none" ? "fixed" : method)), ("floor", .double(floor)),
            ("positions", positions), ("variants", .object(variants)), ("items", .array(items)),
            ("warnings", .array(warnings.map(JSONValue.string))),
            ("definition", .string("ips_ctr = Σ over clicks of 1/max(propensity of the click's position, floor) / impressions: the click-through if every impression were examined like position 1; positions without an estimate take the floor")),
        ])
    }
}
