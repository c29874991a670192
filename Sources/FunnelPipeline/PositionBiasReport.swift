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

    /// Naive and debiased click-through per group of a tally, and per (group, item) the rows of the
    /// `itemLimit` items with most rounds in each of `groups` (ties by item id), in `groups` order.
    public static func debiased(_ tally: PositionBiasTally, groups: [String], propensities: [Double], floor: Double,
                                itemLimit: Int) -> (groups: [String: PositionBias.DebiasedCTR], items: [JSONValue]) {
        var perGroup: [String: PositionBias.DebiasedCTR] = [:]
        var perItem: [String: [String: PositionBias.DebiasedCTR]] = [:]
        for g in tally.groupCounts() {
            perGroup[g.group, default: PositionBias.DebiasedCTR()].add(position: Int(g.position), rounds: g.rounds, clicks: g.clicks,
                                                                        propensities: propensities, floor: floor)
            perItem[g.group, default: [:]][g.item, default: PositionBias.DebiasedCTR()].add(position: Int(g.position), rounds: g.rounds, clicks: g.clicks,
                                                                                          propensities: propensities, floor: floor)
        }
        var items: [JSONValue] = []
        for name in groups {
            let top = (perItem[name] ?? [:]).sorted { ($0.value.impressions, $1.key) > ($1.value.impressions, $0.key) }.prefix(itemLimit)
            for (item, d) in top { items.append(.object([("variant", .string(name)), ("item_id", .string(item))] + ctrJSON(d))) }
        }
        return (perGroup, items)
    }

    /// How many rounds the log holds and how many of them the counting rules collapse (rule 4).
    public static func roundsJSON(_ tally: PositionBiasTally) -> [(String, JSONValue)] {
        [("rounds", .int(tally.rounds)), ("rounds_collapsed_by_dedup", .int(tally.collapsed))]
    }

    /// Whether funnel.yaml asks for the report's `position_bias` section.
    public static func wanted(_ config: FunnelConfig) -> Bool {
        config.positionBiasMethod != "none" || config.positionBiasPropensities != nil
    }

    /// Bootstrap replicates of the report's intervals: 100 for em and harvesting, none otherwise.
    static func reportBootstrap(_ config: FunnelConfig) -> Int {
        let method = PositionBias.Method(rawValue: config.positionBiasMethod)
        return method == .em || method == .harvesting ? 100 : 0
    }

    /// What a tally depends on beyond the counting rules: which rounds are shuffled, what names
    /// the ranker, how many bootstrap replicates it holds. Summaries merge only under equal settings.
    public static func settings(_ config: FunnelConfig) -> String {
        "randomized_context=\(config.randomizedContext);ranker_context=\(config.rankerContext);bootstrap=\(reportBootstrap(config))"
    }

    /// The tally of a log's rounds for the report's section (every round estimates the
    /// propensities; the analysed users' rounds from their first exposure on are grouped by
    /// variant), or nil when funnel.yaml does not ask for the section. The tallies of logs split by
    /// user merge into the tally of the whole.
    public static func tally(log: EventLog, attribution: Attribution?, config: FunnelConfig) -> PositionBiasTally? {
        guard wanted(config) else { return nil }
        return tally(log: log, attribution: attribution, config: config, bootstrap: reportBootstrap(config), seed: 1, unassigned: nil)
    }

    /// The tally of a log's rounds with `bootstrap` replicates; rounds outside the analysed groups
    /// (or every round, without an attribution) are grouped as `unassigned`, or left out when nil.
    public static func tally(log: EventLog, attribution: Attribution?, config: FunnelConfig, bootstrap: Int, seed: UInt64,
                             unassigned: String?) -> PositionBiasTally {
        var tally = PositionBiasTally(bootstrap: bootstrap, seed: seed)
        let (records, rounds, rankers) = records(log, config: config)
        let groups = attribution.map { RoundGroups($0, log: log) }
        var start = 0
        while start < rounds.count {
            let user = rounds[start].user
            var end = start
            var list: [TallyRound] = []
            while end < rounds.count && rounds[end].user == user {
                let r = rounds[end], rec = records[end]
                list.append(TallyRound(item: log.items[r.item], position: r.position, ranker: rankers[Int(rec.ranker)], clicked: r.clicked,
                                       randomized: rec.randomized, group: groups?.group(r, log: log).map { groups!.names[$0] } ?? unassigned,
                                       collapsed: r.collapsed))
                end += 1
            }
            tally.add(user: PositionBiasTally.userKey(log.users[user]), rounds: list)
            start = end
        }
        return tally
    }

    /// The report's `position_bias` section from a tally, or nil when `position_bias.method` is
    /// `none` and no fixed propensities are configured. `variants` orders the debiased
    /// click-through as the report orders its variants. A round's `ctr` here can differ from the
    /// report's `ctr`, which counts a re-shown item once (rule 4).
    public static func section(tally: PositionBiasTally, variants: [String], config: FunnelConfig) throws(PipelineError) -> JSONValue? {
        let method = config.positionBiasMethod
        guard wanted(config) else { return nil }
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
            do { e = try PositionBias.estimate(tally, method: m, alpha: config.significanceLevel) } catch { throw .offPolicy(error) }
            propensities = e.propensities
            positions = positionsJSON(e)
            warnings = e.warnings
        }
        let floor = config.positionBiasFloor
        let (perVariant, items) = debiased(tally, groups: variants, propensities: propensities, floor: floor, itemLimit: 20)
        let variantsJSON: [(String, JSONValue)] = variants.map { ($0, .object(ctrJSON(perVariant[$0] ?? PositionBias.DebiasedCTR()))) }
        return .object([
            ("method", .string(method == "none" ? "fixed" : method)), ("floor", .double(floor)),
            ("positions", positions), ("variants", .object(variantsJSON)), ("items", .array(items)),
        ] + roundsJSON(tally) + [
            ("warnings", .array(warnings.map(JSONValue.string))),
            ("definition", .string("over rounds (every served impression after duplicates, bots and viewability; a re-shown item is a round of its own with its own click): ips_ctr = Σ over clicked rounds of 1/max(propensity of the round's position, floor) / rounds: the click-through if every impression were examined like position 1; positions without an estimate take the floor")),
        ])
    }

    /// The report document with the section appended (variants in the document's order), or the
    /// document as it is without a tally.
    public static func appending(to doc: JSONValue, tally: PositionBiasTally?, config: FunnelConfig) throws(PipelineError) -> JSONValue {
        guard let tally, case .object(var members) = doc, case .object(let variants)? = doc["variants"],
              let section = try section(tally: tally, variants: variants.map(\.0), config: config) else { return doc }
        members.append(("position_bias", section))
        return .object(members)
    }

    /// The section of a log held in memory.
    public static func section(log: EventLog, attribution: Attribution, config: FunnelConfig) throws(PipelineError) -> JSONValue? {
        guard let tally = tally(log: log, attribution: attribution, config: config) else { return nil }
        return try section(tally: tally, variants: attribution.variants, config: config)
    }
}
