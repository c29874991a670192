import Foundation
import FunnelBase
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelOPE

/// Position-bias propensities and debiased click-through from an event log: shared by
/// `funnel position-bias` and the report's `position_bias` section.
public enum PositionBiasReport {
    /// The log's rounds (DESIGN.md §7: served impressions after rules 1–3, never collapsed) as
    /// click records, with the rounds themselves and the names of the rankers. A round is randomized
    /// when its context has `randomized_context` (key=value); its ranker is its context's
    /// `ranker_context` value, else its `variant`, else "default". The cluster is the user.
    public static func records(_ log: EventLog, config: FunnelConfig) -> (records: [ClickRecord], rounds: [Round], rankers: [String]) {
        let kept = Attributor.rounds(log, config: config)
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
            records.append(ClickRecord(cluster: k.user, item: k.item, position: k.position, clicked: k.clicked,
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

    /// Which variant's analysis a round belongs to (rule 7 applied to rounds): the rounds of
    /// analysed users (assigned, not leaked) at or after their first exposure whose impression does
    /// not name another variant of the experiment; nil for every other round.
    public struct RoundGroups: Sendable {
        public let names: [String]
        let assigned: [Int32: (variant: Int, from: Int64)]
        let variantLabels: [Int32]
        let experiment: Int32?

        public init(_ attribution: Attribution, log: EventLog) {
            names = attribution.variants
            variantLabels = attribution.variantLabels
            experiment = log.labels.lookup(attribution.experiment)
            var assigned: [Int32: (variant: Int, from: Int64)] = [:]
            for u in attribution.users { assigned[u.user] = (u.variant, u.firstExposure) }
            self.assigned = assigned
        }

        public func group(_ r: Round, log: EventLog) -> Int? {
            guard let a = assigned[r.user], r.ts >= a.from else { return nil }
            let e = log.events[Int(r.event)]
            if e.variant >= 0 && e.variant != variantLabels[a.variant] && (e.experiment < 0 || e.experiment == experiment) { return nil }
            return a.variant
        }
    }

    /// Naive and debiased click-through of the rounds per group (`groups.count` groups; rounds whose
    /// group is nil are left out).
    public static func debiased(_ rounds: [Round], propensities: [Double], floor: Double, groups: Int,
                                group: (Round) -> Int?) -> [PositionBias.DebiasedCTR] {
        var out = [PositionBias.DebiasedCTR](repeating: PositionBias.DebiasedCTR(), count: groups)
        for k in rounds {
            guard let g = group(k) else { continue }
            out[g].add(position: Int(k.position), clicked: k.clicked, propensities: propensities, floor: floor)
        }
        return out
    }

    /// Per-item naive and debiased click-through over `rounds`, grouped by `group` (nil: skipped);
    /// the `limit` items with most rounds in each group, most rounds first.
    public static func items(_ rounds: [Round], log: EventLog, propensities: [Double], floor: Double,
                             groups: [String], limit: Int, group: (Round) -> Int?) -> [JSONValue] {
        var table: [[Int32: PositionBias.DebiasedCTR]] = groups.map { _ in [:] }
        for k in rounds {
            guard let g = group(k) else { continue }
            table[g][k.item, default: PositionBias.DebiasedCTR()].add(position: Int(k.position), clicked: k.clicked,
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

    /// How many rounds the log holds and how many of them the counting rules collapse (rule 4).
    public static func roundsJSON(_ rounds: [Round]) -> [(String, JSONValue)] {
        [("rounds", .int(rounds.count)), ("rounds_collapsed_by_dedup", .int(rounds.filter(\.collapsed).count))]
    }

    /// The report's `position_bias` section, or nil when `position_bias.method` is `none` and no
    /// fixed propensities are configured. Propensities are estimated on every round (both arms,
    /// before and after exposure: position bias is a property of the surface); the debiased
    /// click-through per variant and per item uses the analysed users' rounds from their first
    /// exposure on (`RoundGroups`). A round's `ctr` here can differ from the report's `ctr`, which
    /// counts a re-shown item once (rule 4).
    public static func section(log: EventLog, attribution: Attribution, config: FunnelConfig,
                               bootstrap: Int = 100, seed: UInt64 = 1) throws(PipelineError) -> JSONValue? {
        let method = config.positionBiasMethod
        guard method != "none" || config.positionBiasPropensities != nil else { return nil }
        let (records, rounds, _) = records(log, config: config)
        var propensities: [Double]
        var positions: JSONValue
        var warnings: [String] = []
        if let fixedList = config.positionBiasPropensities, method == "none" {
            propensities = fixed(fixedList).propensities
            positions = .object(propensities.indices.map { (String($0 + 1), .object([("propensity", .double(propensities[$0])), ("ci", .null)])) })
        } else {
            guard let m = PositionBias.Method(rawValue: method) else {
                throw PipelineError("position_bias.method '\(method)' is not randomized, em, harvesting or none")
            }
            let e: PositionBias.Estimate
            do { e = try PositionBias.estimate(records, method: m, bootstrap: bootstrap, alpha: config.significanceLevel, seed: seed) } catch {
                throw .offPolicy(error)
            }
            propensities = e.propensities
            positions = positionsJSON(e)
            warnings = e.warnings
        }
        let floor = config.positionBiasFloor
        let groups = RoundGroups(attribution, log: log)
        let group = { (r: Round) in groups.group(r, log: log) }
        let perVariant = debiased(rounds, propensities: propensities, floor: floor, groups: groups.names.count, group: group)
        let variants: [(String, JSONValue)] = groups.names.indices.map { (groups.names[$0], .object(ctrJSON(perVariant[$0]))) }
        let items = items(rounds, log: log, propensities: propensities, floor: floor, groups: groups.names, limit: 20, group: group)
        return .object([
            ("method", .string(method == "none" ? "fixed" : method)), ("floor", .double(floor)),
            ("positions", positions), ("variants", .object(variants)), ("items", .array(items)),
        ] + roundsJSON(rounds) + [
            ("warnings", .array(warnings.map(JSONValue.string))),
            ("definition", .string("over rounds (every served impression after duplicates, bots and viewability; a re-shown item is a round of its own with its own click): ips_ctr = Σ over clicked rounds of 1/max(propensity of the round's position, floor) / rounds: the click-through if every impression were examined like position 1; positions without an estimate take the floor")),
        ])
    }
}
