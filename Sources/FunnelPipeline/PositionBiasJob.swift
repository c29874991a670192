import Foundation
import FunnelBase
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelOPE

/// Position-bias propensities from an event log, with the debiased click-through per variant (the
/// report's rule-7 assignment) and per item.
public struct PositionBiasJob: Sendable {
    public var source: EventSource
    public var configPath: String?
    public var method: PositionBias.Method = .em
    /// key=value of the impression's context marking shuffled traffic (overrides funnel.yaml).
    public var randomized: String?
    /// Context key naming the ranker (overrides funnel.yaml).
    public var rankerContext: String?
    /// Propensity floor of the debiased click-through (overrides funnel.yaml).
    public var floor: Double?
    public var maxPosition = 10
    public var bootstrap = 200
    public var seed: UInt64 = 1
    public var alpha = 0.05
    /// Items listed per variant in the document.
    public var topItems = 20
    /// Also return every item's row (for a CSV of them).
    public var allItems = false

    public init(source: EventSource) { self.source = source }

    public struct Result: Sendable {
        public var document: JSONValue
        public var estimate: PositionBias.Estimate
        public var rounds: Int
        public var collapsed: Int
        public var rankers: [String]
        public var floor: Double
        /// Groups of rounds (variants as the report assigns users, then "(not analysed)"), with the
        /// naive and debiased click-through of each group that has rounds.
        public var groups: [(name: String, ctr: PositionBias.DebiasedCTR)]
        public var warnings: [String]
        /// Every item's row per group when `allItems` was asked for.
        public var itemRows: [JSONValue]?
        public var quarantined: [(reason: String, count: Int)]
    }

    public func run() throws(PipelineError) -> Result {
        var cfg = try loadConfig(configPath)
        if let randomized { cfg.randomizedContext = randomized }
        if let rankerContext { cfg.rankerContext = rankerContext }
        if let floor { cfg.positionBiasFloor = floor }
        let log = try readEvents(source)
        // Rounds are grouped as the report analyses them (rule 7: assigned, not leaked, from the
        // first exposure on, no variant mismatch); the rest form one more group. Without an
        // experiment to analyse, every round is in one group.
        let attribution = try? Attributor.run(log, config: cfg)
        var notes: [String] = []
        let groups = attribution.map { $0.variants + ["(not analysed)"] } ?? ["(all)"]
        if attribution == nil {
            notes.append("no single experiment to analyse (set ab_testing.experiment in funnel.yaml to choose one): every round is in one group")
        }
        let tally = PositionBiasReport.tally(log: log, attribution: attribution, config: cfg, bootstrap: method == .randomized ? 0 : bootstrap,
                                             seed: seed, unassigned: groups.last!)
        let estimate: PositionBias.Estimate
        do {
            estimate = try PositionBias.estimate(tally, method: method, maxPosition: maxPosition, alpha: alpha)
        } catch {
            throw PipelineError("\(source.paths.joined(separator: ", ")): \(error.description)")
        }
        let floorValue = cfg.positionBiasFloor
        let (perGroup, items) = PositionBiasReport.debiased(tally, groups: groups, propensities: estimate.propensities, floor: floorValue,
                                                            itemLimit: topItems)
        let itemRows = allItems ? PositionBiasReport.debiased(tally, groups: groups, propensities: estimate.propensities, floor: floorValue,
                                                              itemLimit: Int.max).items : nil
        let rankers = tally.rankers.sorted()
        let used = groups.filter { (perGroup[$0]?.impressions ?? 0) > 0 }
        let variants: [(String, JSONValue)] = used.map { g in
            let d = perGroup[g]!
            return (g, .object([("impressions", .int(d.impressions)), ("clicks", .int(d.clicks)),
                                         ("ctr", .number(d.naive)), ("ips_ctr", .number(d.ips))]))
        }
        let doc: JSONValue = .object([
            ("method", .string(method.rawValue)),
            ("positions", PositionBiasReport.positionsJSON(estimate)),
            ("impressions_used", .int(estimate.recordsUsed)),
        ] + PositionBiasReport.roundsJSON(tally) + [
            ("rankers", .array(rankers.map(JSONValue.string))),
            ("floor", .double(floorValue)),
            ("variants", .object(variants)),
            ("items", .array(items)),
            ("warnings", .array((estimate.warnings + notes).map(JSONValue.string))),
            ("settings", .object([("bootstrap", .int(bootstrap)), ("seed", .int(Int(seed))), ("alpha", .double(alpha)),
                                  ("randomized_context", .string(cfg.randomizedContext)), ("ranker_context", .string(cfg.rankerContext))])),
        ])
        return Result(document: doc, estimate: estimate, rounds: tally.rounds, collapsed: tally.collapsed,
                      rankers: rankers, floor: floorValue, groups: used.map { ($0, perGroup[$0]!) },
                      warnings: estimate.warnings + notes, itemRows: itemRows, quarantined: quarantineCounts(log))
    }
}
